# pg_polyglot: PGXS build, tests and demo.
#
#   make                build the extension
#   make install        install it into the PostgreSQL found by PG_CONFIG
#   make test           install and start the local stack, build, install,
#                       run every suite, print "N passed, N failed"
#   make demo           the same set-up, then a walkthrough
#   make installcheck   only the pg_regress suites that need no store

EXTENSION = pg_polyglot
MODULE_big = pg_polyglot
DATA = pg_polyglot--1.0.sql
PGFILEDESC = "pg_polyglot - sync and foreign data wrappers for Redis, MongoDB, Elasticsearch"

OBJS = \
	src/pg_polyglot.o \
	src/common/backoff.o \
	src/common/conncache.o \
	src/common/fdw_common.o \
	src/common/option.o \
	src/common/ping.o \
	src/core/capture.o \
	src/core/dispatch.o \
	src/core/privileges.o \
	src/core/rowstate.o \
	src/core/verify.o \
	src/core/worker.o \
	src/redis/redis_connection.o \
	src/redis/redis_fdw.o \
	src/redis/redis_option.o \
	src/redis/redis_sink.o \
	src/mongo/mongo_bson.o \
	src/mongo/mongo_connection.o \
	src/mongo/mongo_fdw.o \
	src/mongo/mongo_option.o \
	src/mongo/mongo_sink.o \
	src/mongo/mongo_stream.o \
	src/elastic/elastic_connection.o \
	src/elastic/elastic_fdw.o \
	src/elastic/elastic_import.o \
	src/elastic/elastic_json.o \
	src/elastic/elastic_mapping.o \
	src/elastic/elastic_option.o \
	src/elastic/elastic_sink.o

# pg_regress suites that need no store (make installcheck)
REGRESS = catalog redis_options mongo_options elastic_options
REGRESS_OPTS = --load-extension=pg_polyglot

PKG_CONFIG ?= pkg-config
STORE_LIBS = hiredis libmongoc-1.0 libcurl
PG_CPPFLAGS = -I$(srcdir)/src $(shell $(PKG_CONFIG) --cflags $(STORE_LIBS))
SHLIB_LINK = $(shell $(PKG_CONFIG) --libs $(STORE_LIBS))
# -Wextra, minus unused-parameter: callbacks of fixed signature (FDW API,
# PG_FUNCTION_ARGS) ignore some of their arguments by design.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter $(if $(filter true,$(CI)),-Werror)

# rebuild objects when a header they include changes
override autodepend = yes

# no LLVM bitcode: the JIT does not need it and clang may be missing
override with_llvm = no

# PostgreSQL 15 is what the stack installs; any PG_CONFIG may be given
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
# no server headers yet: "make test" and "make demo" install them first
all:
	@echo "PostgreSQL server headers not found: run 'test/stack.sh install' (or make test)" >&2; exit 1
endif

.PHONY: test demo stack-install stack-start stack-stop print-regress

print-regress:
	@echo $(REGRESS)

stack-install:
	test/stack.sh install

stack-start:
	test/stack.sh start

stack-stop:
	test/stack.sh stop

# Everything from a fresh machine: install and start the stack, build,
# install, run every suite.  Exit status non-zero when anything failed.
test:
	test/run-tests.sh

demo:
	test/demo.sh
