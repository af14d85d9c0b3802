# pg_polyglot: PGXS build, tests and demo.
#
#   make                build the extension
#   make install        install it into the PostgreSQL found by PG_CONFIG
#   make test           install and start the local stack, build, install,
#                       run every suite, print "N passed, N failed": on
#                       PostgreSQL 15 and 18 all of them, on 14, 16 and 17
#                       the pg_regress and integration suites
#   make test PG_MAJOR=N  every suite on PostgreSQL N only (14 to 18)
#   make test-all       every suite on each of 14, 15, 16, 17 and 18
#   make demo           the same set-up, then a walkthrough
#   make test-asan      make test with the library built with AddressSanitizer
#   make installcheck   only the pg_regress suites that need no store, on a
#                       server of their own with the library preloaded

EXTENSION = pg_polyglot
MODULE_big = pg_polyglot
# the install script of each version, and the upgrade scripts between them
DATA = pg_polyglot--1.0.sql pg_polyglot--1.1.sql pg_polyglot--1.0--1.1.sql
PGFILEDESC = "pg_polyglot - sync and foreign data wrappers for Redis, MongoDB, Elasticsearch"

OBJS = \
	src/pg_polyglot.o \
	src/common/backoff.o \
	src/common/conncache.o \
	src/common/curl_setup.o \
	src/common/datum.o \
	src/common/fdw_common.o \
	src/common/fdw_modify.o \
	src/common/json_writer.o \
	src/common/option.o \
	src/common/ping.o \
	src/common/store.o \
	src/core/backfill.o \
	src/core/capture.o \
	src/core/dispatch.o \
	src/core/document.o \
	src/core/event.o \
	src/core/fence.o \
	src/core/keytext.o \
	src/core/outbox.o \
	src/core/privileges.o \
	src/core/rowfilter.o \
	src/core/rowstate.o \
	src/core/spi_util.o \
	src/core/verify.o \
	src/core/worker.o \
	src/redis/redis_cluster.o \
	src/redis/redis_connection.o \
	src/redis/redis_fdw.o \
	src/redis/redis_join.o \
	src/redis/redis_keyset.o \
	src/redis/redis_modify.o \
	src/redis/redis_option.o \
	src/redis/redis_query.o \
	src/redis/redis_sink.o \
	src/mongo/mongo_bson.o \
	src/mongo/mongo_connection.o \
	src/mongo/mongo_fdw.o \
	src/mongo/mongo_import.o \
	src/mongo/mongo_modify.o \
	src/mongo/mongo_option.o \
	src/mongo/mongo_query.o \
	src/mongo/mongo_sink.o \
	src/mongo/mongo_stream.o \
	src/elastic/elastic_connection.o \
	src/elastic/elastic_fdw.o \
	src/elastic/elastic_hit.o \
	src/elastic/elastic_import.o \
	src/elastic/elastic_index.o \
	src/elastic/elastic_mapping.o \
	src/elastic/elastic_modify.o \
	src/elastic/elastic_option.o \
	src/elastic/elastic_paging.o \
	src/elastic/elastic_reindex.o \
	src/elastic/elastic_query.o \
	src/elastic/elastic_sink.o \
	src/http/http_connection.o \
	src/http/http_option.o \
	src/http/http_sink.o

# pg_regress suites that need no store (make installcheck).  sync() needs
# the library preloaded: installcheck starts a server of its own with
# test/regress.conf, as a temporary instance (test/run-tests.sh runs the
# same suites against the stack's PostgreSQL, which preloads it).
REGRESS = catalog redis_options mongo_options elastic_options null_args sync_errors routes_rebind route_filters route_names
REGRESS_OPTS = --load-extension=pg_polyglot \
	--temp-config=$(srcdir)/test/regress.conf --temp-instance=tmp_check

PKG_CONFIG ?= pkg-config
STORE_LIBS = hiredis libmongoc-1.0 libcurl libcrypto

# Redis over TLS needs hiredis 1.0 or later built with hiredis_ssl
# (Debian 12's hiredis 0.14 has none).  HIREDIS_DIR names the prefix of such
# a hiredis (test/stack.sh install builds one in .stack/hiredis, which the
# test and demo scripts give as make HIREDIS_DIR=...); its pkg-config files
# come first, its libraries are linked before the system's and found at run
# time through the library's RUNPATH.  Without hiredis_ssl, a Redis server's
# option tls 'true' is refused with an error.  (Not taken from the
# environment's POLYGLOT_HIREDIS_DIR, which the stack's environment sets: a
# package built where it is loaded must not depend on the stack.)
HIREDIS_DIR ?=
PKG_CONFIG_RUN = $(if $(HIREDIS_DIR),PKG_CONFIG_PATH=$(HIREDIS_DIR)/lib/pkgconfig$${PKG_CONFIG_PATH:+:$$PKG_CONFIG_PATH} )$(PKG_CONFIG)
HIREDIS_SSL := $(shell $(PKG_CONFIG_RUN) --exists hiredis_ssl openssl && echo yes)
ifeq ($(HIREDIS_SSL),yes)
STORE_LIBS += hiredis_ssl openssl
endif
PG_CPPFLAGS = -I$(srcdir)/src $(shell $(PKG_CONFIG_RUN) --cflags $(STORE_LIBS)) \
	$(if $(HIREDIS_SSL),-DPOLYGLOT_HIREDIS_SSL)
SHLIB_LINK = $(shell $(PKG_CONFIG_RUN) --libs $(STORE_LIBS))
PG_CFLAGS = -Wall -Wextra $(if $(filter true,$(CI)),-Werror)
# -Wextra, minus unused-parameter: callbacks of fixed signature (FDW API,
# PG_FUNCTION_ARGS, sink callbacks) ignore some of their arguments by
# design.  Appended to any PG_CFLAGS given on the command line too, so that
# make PG_CFLAGS='-Wall -Wextra -Werror' builds as make CI=true does.
override PG_CFLAGS += -Wno-unused-parameter

# Export only what PostgreSQL looks up by name: _PG_init, the magic block,
# each SQL-callable function with its pg_finfo_ record, and the background
# workers' entry points.  Everything else stays inside the library, so that
# a function such as mongo_get_options can neither take the place of another
# extension's function of the same name nor be replaced by it.  PostgreSQL
# 16 and later build modules with -fvisibility=hidden; a linker version
# script does the same on every supported version.
SHLIB_LINK += -Wl,--version-script=pg_polyglot.exports
EXTRA_CLEAN = pg_polyglot.exports
BGWORKER_ENTRY_POINTS = polyglot_launcher_main polyglot_worker_main

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

# hiredis of HIREDIS_DIR before the system's: the link line puts PostgreSQL's
# LDFLAGS (-L/usr/lib/<arch> among them) before SHLIB_LINK's -L
ifneq ($(HIREDIS_DIR),)
override LDFLAGS_INTERNAL := -L$(HIREDIS_DIR)/lib -Wl,-rpath,$(HIREDIS_DIR)/lib $(LDFLAGS_INTERNAL)
endif

# The server's headers are system headers to this build: their inline
# functions (lib/ilist.h, storage/bufpage.h) leave parameters unused, which
# -Wextra reports, whatever warning options the build is given (PG_CFLAGS,
# CFLAGS or COPT on the command line).
# Both of PostgreSQL's directories, in their order (an -I directory would
# be searched before every -isystem one).
override CPPFLAGS := $(patsubst -I$(includedir_internal),-isystem $(includedir_internal),$(patsubst -I$(includedir_server),-isystem $(includedir_server),$(CPPFLAGS)))

# A pg_config may report the warning options of another compiler than the
# one here (a build of PostgreSQL made with a newer gcc or with clang:
# -Wmissing-variable-declarations is unknown to gcc 12, which then refuses
# to compile anything).  Those $(CC) complains about are left out, each
# checked once per make run.
ifneq ($(wildcard $(PGXS)),)
polyglot_unknown_warnings := $(shell for f in $(sort $(filter -W%,$(CFLAGS))); do \
	$(CC) -Wall $$f -E -x c /dev/null 2>&1 >/dev/null | grep -q . && echo "$$f"; done)
override CFLAGS := $(filter-out $(polyglot_unknown_warnings),$(CFLAGS))
endif

# The exported names, from the pg_finfo_ records the objects define
pg_polyglot.exports: $(OBJS)
	{ echo '{ global: _PG_init; Pg_magic_func;'; \
	  for f in $(BGWORKER_ENTRY_POINTS); do echo "  $$f;"; done; \
	  nm -g --defined-only $(OBJS) | \
	    awk '$$3 ~ /^pg_finfo_/ { print "  " $$3 "; " substr($$3, 10) ";" }' | sort -u; \
	  echo 'local: *; };'; } > $@.tmp && mv $@.tmp $@

pg_polyglot$(DLSUFFIX): pg_polyglot.exports

.PHONY: test test-all test-asan demo stack-install stack-start stack-stop print-regress print-hiredis-ssl

print-regress:
	@echo $(REGRESS)

# "yes" when Redis TLS is built in (hiredis_ssl found)
print-hiredis-ssl:
	@echo $(HIREDIS_SSL)

stack-install:
	test/stack.sh install

stack-start:
	test/stack.sh start

stack-stop:
	test/stack.sh stop

# Everything from a fresh machine: install and start the stack, build,
# install, run every suite, on each PostgreSQL version of the test matrix
# (test/run-versions.sh).  Exit status non-zero when anything failed.
test:
	test/run-versions.sh

test-all:
	POLYGLOT_TEST_MATRIX="15 14 16 17 18" test/run-versions.sh

demo:
	test/demo.sh

# The same run with the library built with AddressSanitizer: any report
# (use after free, overflow of a store library's buffer) fails it
test-asan:
	POLYGLOT_SANITIZE=address test/run-tests.sh

# ---------------------------------------------------------------------------
# Release packaging: PGXN and Debian (test/package.sh checks both).
#
# make dist: pg_polyglot-<version>.zip, the version from META.json, made by
# git archive from a commit (DIST_REF, default HEAD) as PGXN takes it;
# .gitattributes names what goes in.  debian/ builds with pg_buildext, which
# builds outside the source tree (VPATH): the objects' directories are made
# here, since PGXS makes none.
DIST_REF ?= HEAD
.PHONY: dist
dist:
	@version=$$(python3 -c 'import json; print(json.load(open("META.json"))["version"])') && \
	git archive --format=zip --prefix=pg_polyglot-$$version/ \
		--output=pg_polyglot-$$version.zip $(DIST_REF) && \
	echo "pg_polyglot-$$version.zip"

ifneq ($(VPATH),)
$(shell mkdir -p $(sort $(dir $(OBJS))))
endif
