/*-------------------------------------------------------------------------
 *
 * redis_connection.c
 *		Connections to Redis through hiredis: connect with a timeout,
 *		authenticate from the user mapping, select the database, cache per
 *		backend, report errors, and ping.
 *
 * hiredis handles (redisContext, redisReply) are malloc'd by hiredis.  A
 * reply is freed before any ereport, and a context whose connection failed
 * is freed at once, so nothing leaks when an error unwinds the stack.
 *
 * hiredis never waits here: its socket is non-blocking and every wait for
 * the server (connect, send, reply) is redis_wait_socket(), which sleeps on
 * the process latch as well as the socket, with the connect_timeout or
 * io_timeout as a deadline.  A query cancel or a termination request
 * (pg_cancel_backend, statement_timeout, pg_ctl stop -m fast) is served at
 * once, even with the server frozen, and the connection, now in the middle
 * of a command, is closed: nothing reads its stale replies later.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#ifdef POLYGLOT_HIREDIS_SSL
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#include "pg_polyglot.h"
#include "redis/redis.h"

#include <sds.h>				/* hiredis': sdslen() of the output buffer */

#ifdef POLYGLOT_HIREDIS_SSL
#include <hiredis_ssl.h>		/* after hiredis.h, which it needs */
#endif

static void redis_disconnect(void *handle);
static redisReply *get_reply_on(RedisConn *conn, const PolyglotConnPin *pin, const char *what);
static bool pending_current(RedisConn *conn, const RedisPending *p);
static void io_error_detail(redisContext *ctx, char *detail, size_t len, bool *timed_out);

/*
 * OpenSSL's error queue is the thread's, shared with libcurl and libmongoc:
 * emptied before a TLS connection's reads and writes, so that what it holds
 * after a failed one is that one's reason (see io_error_detail()).
 */
static inline void
tls_clear_errors(redisContext *ctx)
{
#ifdef POLYGLOT_HIREDIS_SSL
	if (ctx->privctx)
		ERR_clear_error();
#endif
}

static PolyglotConnCache redis_cache = {
	.store = "pg_polyglot Redis connections",
	.entry_size = sizeof(RedisConn),
	.disconnect = redis_disconnect,
};

/* Redis Cluster servers' entries: their handle is a RedisCluster */
static PolyglotConnCache redis_cluster_cache = {
	.store = "pg_polyglot Redis Cluster connections",
	.entry_size = sizeof(RedisConn),
	.disconnect = polyglot_redis_cluster_free,
};

/*
 * Drops a connection's handle: an entry's (of either cache), or a cluster
 * node's (in no cache, freed as one Redis connection).
 */
static void
discard_conn(RedisConn *conn)
{
	/*
	 * A scan's replies in flight on this handle never come.  (A scan's on a
	 * handle the entry dropped before are still read there, by the scan.)
	 */
	if (conn->pending)
	{
		if (pending_current(conn, conn->pending))
			conn->pending->lost = true;
		conn->pending = NULL;
	}
	conn->orphans = 0;
	polyglot_conncache_discard(conn->base.cache ? conn->base.cache : &redis_cache, &conn->base);
}

/*
 * The wait set of the last context waited on.  WaitLatchOrSocket() makes
 * a set for every wait and frees it after: three system calls more than
 * the wait itself (epoll_create, epoll_ctl, close), about as long as the
 * round trip of a small command.  This one lives as long as its context:
 * polyglot_redis_free_context() frees it before the socket closes, so it
 * never waits on a socket number that another connection took over.
 */
static WaitEventSet *wait_set = NULL;
static redisContext *wait_ctx = NULL;	/* the context it waits on */
static int	wait_fd = -1;
static Latch *wait_latch = NULL;
static int	wait_pos = -1;		/* the socket's event in the set */
static int	wait_event = 0;		/* what it waits for on the socket */

static void
forget_wait_set(void)
{
	WaitEventSet *set = wait_set;

	wait_set = NULL;
	wait_ctx = NULL;
	wait_fd = -1;
	wait_latch = NULL;
	if (set)
		FreeWaitEventSet(set);
}

/* The wait set for event (WL_SOCKET_READABLE or WL_SOCKET_WRITEABLE) on ctx */
static WaitEventSet *
socket_wait_set(redisContext *ctx, int event)
{
	if (wait_set == NULL || wait_ctx != ctx || wait_fd != ctx->fd || wait_latch != MyLatch)
	{
		forget_wait_set();
#if PG_VERSION_NUM >= 170000
		wait_set = CreateWaitEventSet(NULL, 3);
#else
		wait_set = CreateWaitEventSet(TopMemoryContext, 3);
#endif
		AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		wait_pos = AddWaitEventToSet(wait_set, event, ctx->fd, NULL, NULL);
		wait_event = event;
		wait_ctx = ctx;
		wait_fd = ctx->fd;
		wait_latch = MyLatch;
	}
	else if (wait_event != event)
	{
		ModifyWaitEvent(wait_set, wait_pos, event, NULL);
		wait_event = event;
	}
	return wait_set;
}

/*
 * Frees a context (and the wait set of its socket).  Every context is freed
 * here, a cluster node's too.  Never ereports.
 */
void
polyglot_redis_free_context(redisContext *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx == wait_ctx)
		forget_wait_set();
	redisFree(ctx);
}

static void
redis_disconnect(void *handle)
{
	polyglot_redis_free_context((redisContext *) handle);
}

/*
 * The context an exchange runs on: the pinned one of a batch in flight
 * (which its entry may have replaced since), or else the entry's.
 */
static redisContext *
io_context(RedisConn *conn, const PolyglotConnPin *pin)
{
	return pin ? (redisContext *) pin->handle : redis_ctx(conn);
}

/*
 * Drops that context from its entry if it is still the entry's; a pinned
 * one stays allocated until its pin goes.
 */
static void
io_discard(RedisConn *conn, const PolyglotConnPin *pin)
{
	if (pin)
		polyglot_conncache_discard_pinned(pin);
	else
		discard_conn(conn);
}

/*
 * Serves a pending interrupt in the middle of a command: a cancel or a
 * termination leaves the connection with a command half sent or a reply
 * unread, so it is closed before the error (or exit) goes on.
 */
static void
redis_check_interrupts(RedisConn *conn, const PolyglotConnPin *pin)
{
	if (!InterruptPending)
		return;
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		io_discard(conn, pin);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Waits until the connection's socket is ready for event
 * (WL_SOCKET_READABLE or WL_SOCKET_WRITEABLE), serving interrupts meanwhile
 * (see redis_check_interrupts()).  Returns false when the deadline passes
 * first.  A wake-up of the latch that was not an interrupt (a commit waking
 * the worker, say) is noted in *woken, for redis_end_wait() to pass on.
 */
static bool
redis_wait_socket(RedisConn *conn, const PolyglotConnPin *pin, int event,
				  TimestampTz deadline, bool *woken)
{
	for (;;)
	{
		long		timeout;
		WaitEvent	events[3];
		int			n;
		int			i;
		bool		ready = false;

		redis_check_interrupts(conn, pin);
		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (timeout <= 0)
			return false;
		n = WaitEventSetWait(socket_wait_set(io_context(conn, pin), event), timeout, events,
							 lengthof(events), PG_WAIT_EXTENSION);
		for (i = 0; i < n; i++)
		{
			if (events[i].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				*woken = true;
			}
			if (events[i].events & event)
				ready = true;
		}
		if (ready)
			return true;
	}
}

/* Sets the latch again if a wait consumed a wake-up meant for the caller. */
static void
redis_end_wait(bool woken)
{
	if (woken)
		SetLatch(MyLatch);
}

/* The deadline of a wait that starts now and may last ms */
static TimestampTz
deadline_in(int ms)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
}

/* Reports a wait that reached its deadline; drops the connection.  Never returns. */
static void
redis_report_timeout(RedisConn *conn, const PolyglotConnPin *pin, const char *what)
{
	io_discard(conn, pin);
	polyglot_io_timed_out = true;
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("Redis server \"%s\" did not answer %s in time", conn->servername, what),
			 errdetail_internal("No reply within io_timeout %dms (%s).",
								conn->io_timeout_ms, conn->endpoint)));
}

/*
 * Sends what was appended to the context and waits for one reply, reading
 * no more than that reply, within timeout_ms of the first wait.  NULL after
 * an I/O error or a timeout, which the caller reports (with *timed_out
 * telling them apart); a cancel or termination throws after closing the
 * connection.
 *
 * The reply to a command sent now takes the server's time: the socket is
 * waited for first.  The next reply of a pipeline sent earlier (its first
 * reply came already) is most likely in the socket by now: it is read at
 * once, and waited for only when nothing came, which saves setting up a
 * wait for each 16kB hiredis reads of a big pipeline's replies.
 */
static redisReply *
redis_roundtrip(RedisConn *conn, const PolyglotConnPin *pin, int timeout_ms,
				bool *timed_out)
{
	redisContext *ctx = io_context(conn, pin);
	void	   *reply = NULL;
	int			done = 0;
	bool		woken = false;
	bool		sending;
	TimestampTz deadline = 0;

	*timed_out = false;
	tls_clear_errors(ctx);
	if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK)
		return NULL;
	if (reply == NULL)
	{
		sending = sdslen(ctx->obuf) > 0;
		for (;;)
		{
			if (redisBufferWrite(ctx, &done) != REDIS_OK)
				break;
			if (done)
				break;
			if (deadline == 0)
				deadline = deadline_in(timeout_ms);
			if (!redis_wait_socket(conn, pin, WL_SOCKET_WRITEABLE, deadline, &woken))
			{
				*timed_out = true;
				break;
			}
		}
		while (done)
		{
			if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK || reply != NULL)
				break;
			if (!sending)
			{
				size_t		had = ctx->reader->len;

				if (redisBufferRead(ctx) != REDIS_OK)
					break;
				if (ctx->reader->len > had)
				{
					redis_check_interrupts(conn, pin);
					continue;
				}
			}
			if (deadline == 0)
				deadline = deadline_in(timeout_ms);
			if (!redis_wait_socket(conn, pin, WL_SOCKET_READABLE, deadline, &woken))
			{
				*timed_out = true;
				break;
			}
			if (redisBufferRead(ctx) != REDIS_OK)
				break;
			/* the rest of a long reply: read before waiting again */
			sending = false;
		}
	}
	redis_end_wait(woken);
	return (redisReply *) reply;
}

/*
 * Sends one command on a context that is being set up; on failure frees the
 * context and ereports, naming the step.
 */
static void
redis_setup_command(RedisConn *conn, int io_timeout_ms, const char *step,
					int argc, const char **argv)
{
	redisReply *reply = NULL;
	char		detail[512];
	bool		io_error;
	bool		timed_out = false;

	if (redisAppendCommandArgv(redis_ctx(conn), argc, argv, NULL) == REDIS_OK)
		reply = redis_roundtrip(conn, NULL, io_timeout_ms, &timed_out);
	if (reply && reply->type != REDIS_REPLY_ERROR)
	{
		freeReplyObject(reply);
		return;
	}
	io_error = (reply == NULL);
	if (reply)
		strlcpy(detail, reply->str ? reply->str : "unknown error", sizeof(detail));
	else if (timed_out)
		snprintf(detail, sizeof(detail), "no reply within io_timeout %dms", io_timeout_ms);
	else
		io_error_detail(redis_ctx(conn), detail, sizeof(detail), &timed_out);
	if (reply)
		freeReplyObject(reply);
	discard_conn(conn);

	ereport(ERROR,
			(errcode(io_error ? ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION
					 : ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("could not connect to Redis server \"%s\"", conn->servername),
			 errdetail_internal("%s failed at %s: %s", step, conn->endpoint, detail),
			 strcmp(step, "AUTH") == 0 && !io_error ?
			 errhint("Check the user and password options of the user mapping.") : 0));
}

/* Reports a failed connect (its context is freed).  Never returns. */
static void
redis_report_connect_failure(RedisConn *conn, int connect_timeout_ms, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not connect to Redis server \"%s\"", conn->servername),
			 errdetail_internal("%s (%s, connect_timeout %dms).", detail,
								conn->endpoint, connect_timeout_ms)));
}

#ifdef POLYGLOT_HIREDIS_SSL
/*
 * TLS through hiredis_ssl, on OpenSSL.  The context (SSL_CTX) is made for
 * each connection from the server's options and freed once its SSL object
 * holds it; hiredis owns the SSL object from redisInitiateSSL() on and
 * frees it with the redisContext.  The handshake runs here, in
 * redis_wait_socket() like every other wait, so that its errors are
 * reported as such and a cancel interrupts it.  hiredis reads at most 16kB
 * at a time, a TLS record's most, so no decrypted byte waits inside OpenSSL
 * while redis_wait_socket() waits on the socket.
 */

/*
 * The first error of this thread's OpenSSL queue as text (a system error as
 * its errno's text); the queue emptied.
 */
static void
tls_error_text(const char *what, char *err, size_t errlen)
{
	const char *reason = NULL;
	unsigned long e;

	while ((e = ERR_get_error()) != 0)
	{
		if (reason != NULL)
			continue;
#ifdef ERR_SYSTEM_ERROR
		if (ERR_SYSTEM_ERROR(e))
			reason = strerror(ERR_GET_REASON(e));
		else
#endif
			reason = ERR_reason_error_string(e);
	}
	snprintf(err, errlen, "%s: %s", what, reason ? reason : "unknown TLS error");
}

/*
 * Why a TLS handshake failed: the verification's verdict on the server's
 * certificate when that was it (verifying: tls_verify is on), else
 * OpenSSL's error.
 */
static void
tls_failure_text(SSL *ssl, bool verifying, char *err, size_t errlen)
{
	long		verdict = SSL_get_verify_result(ssl);

	/* (without verification OpenSSL still records a verdict, unheeded) */
	if (verifying && verdict != X509_V_OK)
	{
		snprintf(err, errlen, "TLS handshake failed: the server's certificate was refused: %s",
				 X509_verify_cert_error_string(verdict));
		ERR_clear_error();
	}
	else
		tls_error_text("TLS handshake failed", err, errlen);
}

/*
 * The passphrase of an encrypted client key: the user mapping's
 * tls_key_password, or none.  (OpenSSL's own callback would ask a terminal.)
 */
static int
tls_key_password_cb(char *buf, int size, int rwflag, void *userdata)
{
	const char *password = (const char *) userdata;

	if (password == NULL || size <= 0)
		return 0;
	strlcpy(buf, password, size);
	return (int) strlen(buf);
}

/*
 * An OpenSSL context for opts: the server's certificate checked against
 * tls_ca_file (or the system's certificate authorities) unless tls_verify
 * is off; a client certificate and its key.  NULL with the reason in err.
 */
static SSL_CTX *
tls_context(const PolyglotConnOptions *opts, char *err, size_t errlen)
{
	SSL_CTX    *ctx;
	char		what[MAXPGPATH + 100];	/* no palloc while ctx is live */

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
	{
		tls_error_text("could not make a TLS context", err, errlen);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* a renegotiation would make a write wait for a read (TLS 1.2) */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_default_passwd_cb(ctx, tls_key_password_cb);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *) opts->tls_key_password);
	if (opts->tls_verify)
	{
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (opts->tls_ca_file ?
			SSL_CTX_load_verify_locations(ctx, opts->tls_ca_file, NULL) != 1 :
			SSL_CTX_set_default_verify_paths(ctx) != 1)
		{
			if (opts->tls_ca_file)
				snprintf(what, sizeof(what), "could not read tls_ca_file \"%s\"", opts->tls_ca_file);
			else
				strlcpy(what, "could not read the system's certificate authorities", sizeof(what));
			tls_error_text(what, err, errlen);
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (opts->tls_cert_file)
	{
		const char *key = opts->tls_key_file ? opts->tls_key_file : opts->tls_cert_file;

		if (SSL_CTX_use_certificate_chain_file(ctx, opts->tls_cert_file) != 1)
			snprintf(what, sizeof(what), "could not read tls_cert_file \"%s\"", opts->tls_cert_file);
		else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
			snprintf(what, sizeof(what), "could not read the client key in \"%s\"%s", key,
					 opts->tls_key_password ? "" : " (an encrypted key needs tls_key_password in the user mapping)");
		else if (SSL_CTX_check_private_key(ctx) != 1)
			snprintf(what, sizeof(what), "the key in \"%s\" is not the certificate's", key);
		else
			return ctx;
		tls_error_text(what, err, errlen);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * Starts TLS on conn's connected context and completes the handshake
 * before the deadline: the server's certificate must name host (a DNS
 * name, or an IP address as such) unless tls_verify is off.  Returns false
 * with the reason in err, the context freed, when it fails.
 */
static bool
redis_start_tls(RedisConn *conn, const PolyglotConnOptions *opts, const char *host,
				TimestampTz deadline, char *err, size_t errlen)
{
	SSL_CTX    *sslctx = tls_context(opts, err, errlen);
	SSL		   *ssl;
	unsigned char addr[sizeof(struct in6_addr)];
	bool		is_ip;
	bool		woken = false;

	if (sslctx == NULL)
	{
		discard_conn(conn);
		return false;
	}
	ssl = SSL_new(sslctx);
	SSL_CTX_free(sslctx);		/* ssl holds it now */
	if (ssl == NULL)
	{
		tls_error_text("could not start TLS", err, errlen);
		discard_conn(conn);
		return false;
	}
	is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (opts->tls_verify)
	{
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1 :
			SSL_set1_host(ssl, host) != 1)
		{
			tls_error_text("could not set the name to verify", err, errlen);
			SSL_free(ssl);
			discard_conn(conn);
			return false;
		}
	}
	/* a non-blocking context: this sends the hello at most, and owns ssl if it succeeds */
	ERR_clear_error();
	if (redisInitiateSSL(redis_ctx(conn), ssl) != REDIS_OK)
	{
		if (ERR_peek_error() != 0)
			tls_failure_text(ssl, opts->tls_verify, err, errlen);
		else
			snprintf(err, errlen, "TLS handshake failed: %s", redis_ctx(conn)->errstr);
		SSL_free(ssl);
		discard_conn(conn);
		return false;
	}
	while (!SSL_is_init_finished(ssl))
	{
		int			rc;
		int			event;

		ERR_clear_error();
		rc = SSL_do_handshake(ssl);
		if (rc == 1)
			break;
		switch (SSL_get_error(ssl, rc))
		{
			case SSL_ERROR_WANT_READ:
				event = WL_SOCKET_READABLE;
				break;
			case SSL_ERROR_WANT_WRITE:
				event = WL_SOCKET_WRITEABLE;
				break;
			case SSL_ERROR_SYSCALL:
				snprintf(err, errlen, "TLS handshake failed: %s",
						 errno != 0 ? strerror(errno) : "the server closed the connection");
				ERR_clear_error();
				redis_end_wait(woken);
				discard_conn(conn);
				return false;
			default:
				tls_failure_text(ssl, opts->tls_verify, err, errlen);
				redis_end_wait(woken);
				discard_conn(conn);
				return false;
		}
		/* a cancel here frees the context, and ssl with it */
		if (!redis_wait_socket(conn, NULL, event, deadline, &woken))
		{
			redis_end_wait(woken);
			strlcpy(err, "TLS handshake timed out", errlen);
			discard_conn(conn);
			return false;
		}
	}
	redis_end_wait(woken);
	return true;
}
#endif							/* POLYGLOT_HIREDIS_SSL */

/*
 * Opens a TCP connection to host:port as conn's context (its base.conn is
 * NULL), and TLS on it if opts say so, waiting in redis_wait_socket() so
 * that a cancel interrupts it.  Returns false with the reason in err, the
 * context freed, when it fails.
 */
static bool
redis_open(RedisConn *conn, const PolyglotConnOptions *opts, const char *host, int port,
		   char *err, size_t errlen)
{
	redisContext *ctx;
	bool		woken = false;
	bool		ready;
	int			so_error = 0;
	socklen_t	len = sizeof(so_error);
	TimestampTz deadline;

#ifndef POLYGLOT_HIREDIS_SSL
	if (opts->tls)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pg_polyglot was built without TLS for Redis"),
				 errdetail("Redis server \"%s\" has option tls 'true', and the hiredis pg_polyglot was built with has no hiredis_ssl.",
						   conn->servername),
				 errhint("Build pg_polyglot with hiredis 1.0 or later built with USE_SSL=1: make HIREDIS_DIR=<its prefix>.")));
#endif
	/* (it resolves host first, blocking: connect_timeout starts after) */
	ctx = redisConnectNonBlock(host, port);
	deadline = deadline_in(opts->connect_timeout_ms);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to Redis server \"%s\"",
						conn->servername)));
	conn->base.conn = ctx;
	if (ctx->err)
	{
		strlcpy(err, ctx->errstr, errlen);
		discard_conn(conn);
		return false;
	}
	ready = redis_wait_socket(conn, NULL, WL_SOCKET_WRITEABLE, deadline, &woken);
	redis_end_wait(woken);
	if (!ready)
		so_error = ETIMEDOUT;
	else if (getsockopt(ctx->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
		so_error = errno;
	if (so_error != 0)
	{
		strlcpy(err, strerror(so_error), errlen);
		discard_conn(conn);
		return false;
	}
#ifdef POLYGLOT_HIREDIS_SSL
	if (opts->tls)
		return redis_start_tls(conn, opts, host, deadline, err, errlen);
#endif
	return true;
}

/*
 * Asks one Sentinel where the primary of master_name is, on conn's
 * context (connected to the Sentinel, and closed again here).  Fills
 * host/port and returns true, or returns false with the reason in err.
 */
static bool
sentinel_ask(RedisConn *conn, const RedisConnOptions *opts, const char *sentinel_host,
			 int sentinel_port, char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
	const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", opts->master_name};
	redisReply *reply = NULL;
	bool		timed_out = false;
	bool		ok = false;

	if (!redis_open(conn, &opts->common, sentinel_host, sentinel_port, err, errlen))
		return false;
	/* Sentinels of their own credentials (user mapping's sentinel_user, sentinel_password) */
	if (opts->sentinel_password)
	{
		const char *auth[3];
		int			n = 0;

		auth[n++] = "AUTH";
		if (opts->sentinel_user)
			auth[n++] = opts->sentinel_user;
		auth[n++] = opts->sentinel_password;
		if (redisAppendCommandArgv(redis_ctx(conn), n, auth, NULL) == REDIS_OK)
			reply = redis_roundtrip(conn, NULL, opts->common.io_timeout_ms, &timed_out);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		{
			char		detail[256];

			if (reply == NULL && !timed_out)
				io_error_detail(redis_ctx(conn), detail, sizeof(detail), &timed_out);
			snprintf(err, errlen, "AUTH failed: %s",
					 reply ? (reply->str ? reply->str : "error") :
					 timed_out ? "no reply within io_timeout" : detail);
			if (reply)
				freeReplyObject(reply);
			discard_conn(conn);
			return false;
		}
		freeReplyObject(reply);
		reply = NULL;
	}
	if (redisAppendCommandArgv(redis_ctx(conn), 3, argv, NULL) == REDIS_OK)
		reply = redis_roundtrip(conn, NULL, opts->common.io_timeout_ms, &timed_out);
	if (reply == NULL && timed_out)
		snprintf(err, errlen, "no reply within io_timeout");
	else if (reply == NULL)
		io_error_detail(redis_ctx(conn), err, errlen, &timed_out);
	else if (reply->type == REDIS_REPLY_ERROR)
		snprintf(err, errlen, "%s", reply->str ? reply->str : "error");
	else if (reply->type == REDIS_REPLY_NIL)
		snprintf(err, errlen, "it monitors no master named \"%s\"", opts->master_name);
	else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
			 reply->element[0]->type != REDIS_REPLY_STRING ||
			 reply->element[1]->type != REDIS_REPLY_STRING ||
			 reply->element[0]->len >= hostlen)
		snprintf(err, errlen, "unexpected reply of type %d", reply->type);
	else
	{
		char	   *end;
		long		p;

		errno = 0;
		p = strtol(reply->element[1]->str, &end, 10);
		if (*end != '\0' || errno != 0 || p < 1 || p > 65535)
			snprintf(err, errlen, "invalid port \"%s\"", reply->element[1]->str);
		else
		{
			memcpy(host, reply->element[0]->str, reply->element[0]->len);
			host[reply->element[0]->len] = '\0';
			*port = (int) p;
			ok = true;
		}
	}
	if (reply)
		freeReplyObject(reply);
	discard_conn(conn);
	return ok;
}

/*
 * The primary of a Sentinel-managed master: the first Sentinel of the
 * list that answers tells.  Sentinels that cannot be reached or do not
 * know the master are skipped; when none tells, the error names each
 * one's reason.
 */
static void
sentinel_resolve(RedisConn *conn, const RedisConnOptions *opts, char *host, size_t hostlen,
				 int *port)
{
	char	  **hosts;
	int		   *ports;
	char	   *bad;
	int			n = polyglot_redis_parse_addresses(opts->sentinels, &hosts, &ports, &bad);
	StringInfoData reasons;
	int			i;

	initStringInfo(&reasons);
	for (i = 0; i < n; i++)
	{
		char		err[256];

		if (sentinel_ask(conn, opts, hosts[i], ports[i], host, hostlen, port, err, sizeof(err)))
			return;
		appendStringInfo(&reasons, "%s%s:%d: %s", reasons.len ? "; " : "", hosts[i], ports[i], err);
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not connect to Redis server \"%s\"", conn->servername),
			 errdetail_internal("No Sentinel told where master \"%s\" is: %s.",
								opts->master_name, n < 0 ? "invalid option \"sentinels\"" : reasons.data)));
}

/*
 * One exchange on a context being set up: the reply, or NULL with the
 * reason in detail.
 */
static redisReply *
setup_exchange(RedisConn *conn, const RedisConnOptions *opts, int argc, const char **argv,
			   char *detail, size_t len)
{
	redisReply *reply = NULL;
	bool		timed_out = false;

	if (redisAppendCommandArgv(redis_ctx(conn), argc, argv, NULL) == REDIS_OK)
		reply = redis_roundtrip(conn, NULL, opts->common.io_timeout_ms, &timed_out);
	if (reply == NULL && timed_out)
		strlcpy(detail, "no reply within io_timeout", len);
	else if (reply == NULL)
		io_error_detail(redis_ctx(conn), detail, len, &timed_out);
	return reply;
}

/*
 * The role a server reports: "master", "slave", ..., in role (of len), or
 * false when it will not tell (an ACL user without the permission; a
 * server older than HELLO) with the reason in detail.  HELLO 2 (Redis 6,
 * in the @connection category every client has) first, then ROLE.
 */
static bool
server_role(RedisConn *conn, const RedisConnOptions *opts, char *role, size_t len,
			char *detail, size_t dlen, bool *io_error)
{
	const char *hello[2] = {"HELLO", "2"};
	const char *role_cmd[1] = {"ROLE"};
	redisReply *reply;
	size_t		i;

	*io_error = false;
	reply = setup_exchange(conn, opts, 2, hello, detail, dlen);
	if (reply == NULL)
	{
		*io_error = true;
		return false;
	}
	if (reply->type == REDIS_REPLY_ARRAY)
	{
		for (i = 0; i + 1 < reply->elements; i += 2)
			if (reply->element[i]->type == REDIS_REPLY_STRING &&
				strcmp(reply->element[i]->str, "role") == 0 &&
				reply->element[i + 1]->type == REDIS_REPLY_STRING)
			{
				strlcpy(role, reply->element[i + 1]->str, len);
				freeReplyObject(reply);
				return true;
			}
	}
	freeReplyObject(reply);
	reply = setup_exchange(conn, opts, 1, role_cmd, detail, dlen);
	if (reply == NULL)
	{
		*io_error = true;
		return false;
	}
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
		reply->element[0]->type == REDIS_REPLY_STRING)
	{
		strlcpy(role, reply->element[0]->str, len);
		freeReplyObject(reply);
		return true;
	}
	strlcpy(detail, reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str : "no role", dlen);
	freeReplyObject(reply);
	return false;
}

/*
 * After a failover a Sentinel may still name the former primary for a
 * moment, and a former primary comes back as a replica: the server a
 * Sentinel named must say it is a master before it gets writes.  One that
 * will not say (its ACL user may not ask) is taken at its word; a write
 * it refuses as a replica (READONLY) drops the connection.
 */
static void
check_master_role(RedisConn *conn, const RedisConnOptions *opts)
{
	char		role[32];
	char		detail[256];
	bool		io_error;

	if (!server_role(conn, opts, role, sizeof(role), detail, sizeof(detail), &io_error))
	{
		if (!io_error)
			return;
		discard_conn(conn);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to Redis server \"%s\"", conn->servername),
				 errdetail_internal("HELLO failed at %s: %s", conn->endpoint, detail)));
	}
	if (strcmp(role, "master") == 0)
		return;
	discard_conn(conn);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not connect to Redis server \"%s\"", conn->servername),
			 errdetail_internal("The Sentinels name %s as the primary of master \"%s\", but it is a %s (a failover is under way).",
								conn->endpoint, opts->master_name, role)));
}

/*
 * Connects conn (its base.conn is NULL) and sets it up: AUTH, SELECT.  With
 * Sentinels, asks them for the primary first and checks its role.  On any
 * error the context is freed and base.conn is NULL again.
 */
static void
redis_connect(RedisConn *conn, const RedisConnOptions *opts)
{
	char		err[256];
	char		host[256];
	int			port = opts->port;

	if (opts->common.user && !opts->common.password)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("user mapping for Redis server \"%s\" has a user but no password",
						conn->servername),
				 errhint("Add a password option to the user mapping.")));

	strlcpy(host, opts->host, sizeof(host));
	if (opts->sentinels)
	{
		sentinel_resolve(conn, opts, host, sizeof(host), &port);
		snprintf(conn->endpoint, sizeof(conn->endpoint), "%s:%d, primary of \"%s\"",
				 host, port, opts->master_name);
	}
	if (!redis_open(conn, &opts->common, host, port, err, sizeof(err)))
		redis_report_connect_failure(conn, opts->common.connect_timeout_ms, err);

	if (opts->common.password)
	{
		const char *argv[3];
		int			argc = 0;

		argv[argc++] = "AUTH";
		if (opts->common.user)
			argv[argc++] = opts->common.user;
		argv[argc++] = opts->common.password;
		redis_setup_command(conn, opts->common.io_timeout_ms, "AUTH", argc, argv);
	}

	if (opts->sentinels)
		check_master_role(conn, opts);

	if (opts->db != 0)
	{
		char		dbstr[16];
		const char *argv[2];

		snprintf(dbstr, sizeof(dbstr), "%d", opts->db);
		argv[0] = "SELECT";
		argv[1] = dbstr;
		redis_setup_command(conn, opts->common.io_timeout_ms, "SELECT", 2, argv);
	}
}

/*
 * Returns the cached connection for a server and optional user mapping,
 * connecting first if needed.  Ereports when the server cannot be reached or
 * refuses the credentials; the returned entry is valid for the life of the
 * backend, its context until an error drops it.
 */
RedisConn *
polyglot_redis_get_connection(ForeignServer *server, UserMapping *user)
{
	RedisConn  *conn;
	bool		cluster = polyglot_option_find(server->options, "cluster") != NULL;

	conn = (RedisConn *) polyglot_conncache_entry(cluster ? &redis_cluster_cache : &redis_cache,
												 server, user);
	if (conn->base.conn == NULL)
	{
		RedisConnOptions opts;

		polyglot_redis_get_options(server, user, &opts);
		strlcpy(conn->servername, server->servername, sizeof(conn->servername));
		if (opts.cluster)
			snprintf(conn->endpoint, sizeof(conn->endpoint), "cluster %s", opts.cluster);
		else if (opts.sentinels)
			snprintf(conn->endpoint, sizeof(conn->endpoint), "primary of \"%s\"",
					 opts.master_name);
		else
			snprintf(conn->endpoint, sizeof(conn->endpoint), "%s:%d", opts.host, opts.port);
		conn->io_timeout_ms = opts.common.io_timeout_ms;
		conn->wait_replicas = opts.wait_replicas;
		conn->is_cluster = opts.cluster != NULL;
		if (opts.cluster)
		{
			if (opts.common.user && !opts.common.password)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("user mapping for Redis server \"%s\" has a user but no password",
								conn->servername),
						 errhint("Add a password option to the user mapping.")));
			polyglot_redis_cluster_connect(conn, &opts);
		}
		else
			redis_connect(conn, &opts);
	}
	return conn;
}

/* Connects a cluster node's connection (in no cache) */
void
polyglot_redis_node_connect(RedisConn *node, const RedisConnOptions *opts)
{
	node->base.cache = &redis_cache;
	redis_connect(node, opts);
}

/* Appends a command to a node's connection; sent by polyglot_redis_node_flush() */
void
polyglot_redis_node_append(RedisConn *node, int argc, const char **argv, const size_t *argvlen)
{
	if (redisAppendCommandArgv(redis_ctx(node), argc, argv, argvlen) != REDIS_OK)
		polyglot_redis_report_error(node, NULL, "a pipelined command");
}

/*
 * A connection dropped after an error (in a subtransaction, say) while a
 * scan or write still holds its entry: an error, not a NULL context.
 */
static void
check_connected(RedisConn *conn)
{
	if (conn->base.conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the connection to Redis server \"%s\" was closed by an earlier error",
						conn->servername),
				 errhint("Run the statement again.")));
}

/*
 * Sends one command and returns its reply, which the caller frees with
 * freeReplyObject().  argvlen may be NULL for NUL-terminated arguments.
 * An I/O error (timeout, lost connection) drops the connection and
 * ereports; an error reply is returned to the caller to classify.
 */
redisReply *
polyglot_redis_command_argv(RedisConn *conn, int argc, const char **argv,
				   const size_t *argvlen)
{
	polyglot_redis_settle(conn);
	check_connected(conn);
	if (conn->is_cluster)
	{
		polyglot_redis_cluster_append(conn, argc, argv, argvlen);
		return polyglot_redis_cluster_reply(conn, NULL, argv[0]);
	}
	if (redisAppendCommandArgv(redis_ctx(conn), argc, argv, argvlen) != REDIS_OK)
		polyglot_redis_report_error(conn, NULL, argv[0]);
	return polyglot_redis_get_reply(conn, argv[0]);
}

/* Starts an empty command with room for cap arguments (it grows) */
void
polyglot_redis_cmd_init(RedisCmd *cmd, int cap)
{
	cmd->argc = 0;
	cmd->cap = Max(cap, 1);
	cmd->argv = palloc(sizeof(char *) * cmd->cap);
	cmd->argvlen = palloc(sizeof(size_t) * cmd->cap);
}

/* Adds an argument of len bytes (binary safe); arg must live until appended */
void
polyglot_redis_cmd_arg_len(RedisCmd *cmd, const char *arg, size_t len)
{
	if (cmd->argc == cmd->cap)
	{
		cmd->cap *= 2;
		cmd->argv = repalloc(cmd->argv, sizeof(char *) * cmd->cap);
		cmd->argvlen = repalloc(cmd->argvlen, sizeof(size_t) * cmd->cap);
	}
	cmd->argv[cmd->argc] = arg;
	cmd->argvlen[cmd->argc] = len;
	cmd->argc++;
}

void
polyglot_redis_cmd_arg(RedisCmd *cmd, const char *arg)
{
	polyglot_redis_cmd_arg_len(cmd, arg, strlen(arg));
}

/*
 * Writes "<lead><n>\r\n" (a protocol header: *count or $length) at p, which
 * has room for 24 bytes; returns the end
 */
static inline char *
format_header(char *p, char lead, size_t n)
{
	char		digits[20];
	int			i = 0;

	do
	{
		digits[i++] = (char) ('0' + n % 10);
		n /= 10;
	} while (n > 0);
	*p++ = lead;
	while (i > 0)
		*p++ = digits[--i];
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

/*
 * Appends the header of a command of nargs arguments, in the protocol's
 * form (RESP), which the arguments follow (polyglot_redis_format_arg); the
 * commands of a pipeline are formatted one after the other into buf and
 * appended with polyglot_redis_append_formatted().
 */
void
polyglot_redis_format_command(StringInfo buf, int nargs)
{
	enlargeStringInfo(buf, 24);
	buf->len = (int) (format_header(buf->data + buf->len, '*', (size_t) nargs) - buf->data);
	buf->data[buf->len] = '\0';
}

/* Appends an argument made of a then b (blen may be 0), binary safe */
void
polyglot_redis_format_arg(StringInfo buf, const char *a, size_t alen, const char *b, size_t blen)
{
	char	   *p;

	enlargeStringInfo(buf, (int) (alen + blen + 26));
	p = format_header(buf->data + buf->len, '$', alen + blen);
	memcpy(p, a, alen);
	p += alen;
	if (blen > 0)
	{
		memcpy(p, b, blen);
		p += blen;
	}
	*p++ = '\r';
	*p++ = '\n';
	*p = '\0';
	buf->len = (int) (p - buf->data);
}

/*
 * Appends formatted commands (polyglot_redis_format_command) to the
 * connection's output buffer, sent with the pipeline's first read.  One
 * Redis server only: a cluster's commands go to the node of each key
 * (polyglot_redis_cmd_append).
 */
void
polyglot_redis_append_formatted(RedisConn *conn, const char *buf, size_t len)
{
	polyglot_redis_settle(conn);
	check_connected(conn);
	if (conn->is_cluster)
		elog(ERROR, "pg_polyglot: formatted commands cannot go to a Redis Cluster");
	if (redisAppendFormattedCommand(redis_ctx(conn), buf, len) != REDIS_OK)
		polyglot_redis_report_error(conn, NULL, "a pipelined command");
}

/*
 * Are p's replies still to come on the connection's handle, the one new
 * commands go to?  (Not when p's handle is one the entry dropped since.)
 */
static bool
pending_current(RedisConn *conn, const RedisPending *p)
{
	return !p->lost && p->pin.handle != NULL && conn->base.conn != NULL &&
		conn->base.generation == p->pin.generation;
}

/*
 * Reads and frees the replies of a scan that an error ended
 * (polyglot_redis_abandon()), which come before any other on the
 * connection's handle; each within io_timeout, as any reply.  Nothing is
 * owed when the handle is another one now.  An I/O error or a timeout
 * drops the connection and ereports.
 */
static void
read_orphans(RedisConn *conn)
{
	if (conn->orphans == 0)
		return;
	if (conn->base.conn == NULL || conn->base.generation != conn->orphans_generation)
	{
		conn->orphans = 0;
		return;
	}
	while (conn->orphans > 0)
	{
		freeReplyObject(get_reply_on(conn, NULL, "the reads of an earlier scan"));
		conn->orphans--;
	}
}

/*
 * Reads the replies a scan is still owed on the connection into its
 * RedisPending, so that the connection's next reply is the next command's.
 * Every function that sends on a connection does this first; a scan reads
 * its own with polyglot_redis_collect().  Replies owed on a handle that the
 * entry dropped since (ALTER SERVER) are not in the way: their owner reads
 * them there.  An I/O error drops the connection (the owner then finds its
 * replies lost) and ereports.
 */
void
polyglot_redis_settle(RedisConn *conn)
{
	RedisPending *p = conn->pending;

	read_orphans(conn);
	if (p == NULL)
		return;
	conn->pending = NULL;
	if (!pending_current(conn, p))
		return;
	PG_TRY();
	{
		while (p->got < p->expected)
		{
			p->replies[p->got] = get_reply_on(conn, NULL, "a pipelined read");
			p->got++;
		}
	}
	PG_CATCH();
	{
		/*
		 * An I/O error, a timeout or a cancel dropped the connection
		 * already; any other error (out of memory in the wait) leaves the
		 * rest of p's replies in the socket, where nobody counts them now:
		 * the connection goes too, else the next command would read them.
		 */
		if (conn->base.conn != NULL && conn->base.generation == p->pin.generation)
			discard_conn(conn);
		p->lost = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Reads the replies still owed to p into p->replies: on the connection's
 * handle, or on the pinned handle they were sent on when the entry dropped
 * that one since (its server or user mapping changed: it is no one else's
 * now).  Nothing when they were lost.  Errors as polyglot_redis_settle().
 */
static void
read_owed(RedisConn *conn, RedisPending *p)
{
	if (conn->pending == p)
		polyglot_redis_settle(conn);
	if (p->lost || p->got >= p->expected)
		return;
	Assert(p->pin.handle != NULL && !pending_current(conn, p));
	PG_TRY();
	{
		while (p->got < p->expected)
		{
			p->replies[p->got] = get_reply_on(conn, &p->pin, "a pipelined read");
			p->got++;
		}
	}
	PG_CATCH();
	{
		/* the retired handle is no one else's: it goes with the pin */
		p->lost = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Appends formatted commands (ncommands of them, polyglot_redis_format_command)
 * and sends them, their replies owed to p: read later with
 * polyglot_redis_collect(), by which time the server has worked on them.
 * A pipeline starts with p zeroed (owing nothing); sent again before its
 * replies are read, commands add to it, whoever read some of them
 * meanwhile.  p->replies must have room for every reply owed.  One Redis
 * server only.
 */
void
polyglot_redis_send_owed(RedisConn *conn, RedisPending *p, const char *buf, size_t len,
						 int ncommands)
{
	if (conn->pending != p)
		polyglot_redis_settle(conn);
	/*
	 * The replies owed before, on a handle the entry dropped since: read
	 * there first (which unpins it), the next ones go to the entry's.
	 */
	if (p->pin.handle != NULL && !pending_current(conn, p))
		polyglot_redis_collect(conn, p);
	check_connected(conn);
	if (conn->is_cluster)
		elog(ERROR, "pg_polyglot: a Redis Cluster connection cannot owe replies");
	if (p->pin.handle == NULL)
		polyglot_conncache_pin(&conn->base, &p->pin);
	if (redisAppendFormattedCommand(redis_ctx(conn), buf, len) != REDIS_OK)
		polyglot_redis_report_error(conn, NULL, "a pipelined command");
	p->expected += ncommands;
	conn->pending = p;
	polyglot_redis_node_flush(conn, "a pipelined command");
}

/*
 * Reads the rest of the replies owed to p: all of them are then in
 * p->replies[0 .. p->expected - 1], the caller's to free, and p's handle
 * is no longer pinned.  Ereports when they were lost with their handle.
 */
void
polyglot_redis_collect(RedisConn *conn, RedisPending *p)
{
	read_owed(conn, p);
	polyglot_conncache_unpin(&p->pin);
	if (p->lost || p->got < p->expected)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the connection to Redis server \"%s\" was closed by an earlier error",
						conn->servername),
				 errhint("Run the statement again.")));
}

/* Frees the replies read into p, which then owes nothing and pins nothing */
static void
free_owed(RedisPending *p)
{
	int			i;

	for (i = 0; i < p->got; i++)
		if (p->replies[i])
			freeReplyObject(p->replies[i]);
	p->got = p->expected = 0;
	polyglot_conncache_unpin(&p->pin);
}

/*
 * Reads and frees the replies owed to p (the scan ends before it needs
 * them).  Errors as polyglot_redis_settle().
 */
void
polyglot_redis_drain(RedisConn *conn, RedisPending *p)
{
	read_owed(conn, p);
	free_owed(p);
}

/*
 * Gives the replies owed to p up without reading any (an error unwinds the
 * scan, which may not wait for the server now).  Still to come on a handle
 * in step, they are the connection's to read and drop before its next
 * command (read_orphans()): the connection stays, for the other scans and
 * statements of the session that use it.  On a handle the entry dropped
 * since, they go with it.  Never ereports.
 */
void
polyglot_redis_abandon(RedisConn *conn, RedisPending *p)
{
	if (conn->pending == p)
	{
		conn->pending = NULL;
		if (pending_current(conn, p) && p->got < p->expected)
		{
			/* (orphans of another handle are not owed any more) */
			if (conn->orphans_generation != p->pin.generation)
				conn->orphans = 0;
			conn->orphans += p->expected - p->got;
			conn->orphans_generation = p->pin.generation;
		}
	}
	free_owed(p);
}

/*
 * Appends the command to the connection's output buffer (sent with the
 * pipeline's first read) and empties cmd for the next one.
 */
void
polyglot_redis_cmd_append(RedisConn *conn, RedisCmd *cmd)
{
	polyglot_redis_settle(conn);
	check_connected(conn);
	if (conn->is_cluster)
		polyglot_redis_cluster_append(conn, cmd->argc, cmd->argv, cmd->argvlen);
	else if (redisAppendCommandArgv(redis_ctx(conn), cmd->argc, cmd->argv, cmd->argvlen) != REDIS_OK)
		polyglot_redis_report_error(conn, NULL, "a pipelined command");
	cmd->argc = 0;
}

/*
 * The next reply of a pipeline (flushing what was appended first), within
 * io_timeout; the caller frees it.  An I/O error or a timeout drops the
 * connection and ereports; so does a cancel, after closing the connection.
 */
static redisReply *
get_reply_on(RedisConn *conn, const PolyglotConnPin *pin, const char *what)
{
	redisReply *reply;
	bool		timed_out;

	reply = redis_roundtrip(conn, pin, conn->io_timeout_ms, &timed_out);
	if (reply == NULL)
	{
		if (timed_out)
			redis_report_timeout(conn, pin, what);
		if (pin)
			polyglot_redis_report_pinned_error(conn, pin, what);
		polyglot_redis_report_error(conn, NULL, what);
	}
	return reply;
}

redisReply *
polyglot_redis_get_reply(RedisConn *conn, const char *what)
{
	check_connected(conn);
	if (conn->is_cluster)
		return polyglot_redis_cluster_reply(conn, NULL, what);
	return get_reply_on(conn, NULL, what);
}

/* The next reply of a cluster node's connection */
redisReply *
polyglot_redis_node_reply(RedisConn *node, const char *what)
{
	check_connected(node);
	return get_reply_on(node, NULL, what);
}

/*
 * The next n replies of a pipeline, into replies[0..n-1]; the caller frees
 * them.  All are read before any is judged, so that the connection stays in
 * step; on an error or a cancel the replies read so far are freed first.
 */
void
polyglot_redis_get_replies(RedisConn *conn, int n, redisReply **replies, const char *what)
{
	int			i;

	memset(replies, 0, sizeof(redisReply *) * n);
	PG_TRY();
	{
		for (i = 0; i < n; i++)
			replies[i] = polyglot_redis_get_reply(conn, what);
	}
	PG_CATCH();
	{
		for (i = 0; i < n; i++)
			if (replies[i])
				freeReplyObject(replies[i]);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * polyglot_redis_get_reply() on the pinned context of a batch in flight, which may
 * no longer be its entry's: its replies are read where its commands went.
 */
redisReply *
polyglot_redis_get_pinned_reply(RedisConn *conn, const PolyglotConnPin *pin, const char *what)
{
	if (conn->is_cluster)
		return polyglot_redis_cluster_reply(conn, pin, what);
	return get_reply_on(conn, pin, what);
}

/*
 * Sends everything appended so far without waiting for replies, within
 * io_timeout.  Errors as polyglot_redis_get_reply().
 */
void
polyglot_redis_flush(RedisConn *conn, const char *what)
{
	polyglot_redis_settle(conn);
	check_connected(conn);
	if (conn->is_cluster)
		polyglot_redis_cluster_flush(conn, NULL, what);
	else
		polyglot_redis_node_flush(conn, what);
}

/* polyglot_redis_flush() of one Redis connection (a cluster node's too) */
void
polyglot_redis_node_flush(RedisConn *conn, const char *what)
{
	redisContext *ctx;
	TimestampTz deadline = deadline_in(conn->io_timeout_ms);
	bool		woken = false;
	int			done = 0;

	check_connected(conn);
	ctx = redis_ctx(conn);
	tls_clear_errors(ctx);
	for (;;)
	{
		if (redisBufferWrite(ctx, &done) != REDIS_OK)
		{
			redis_end_wait(woken);
			polyglot_redis_report_error(conn, NULL, what);
		}
		if (done)
			break;
		if (!redis_wait_socket(conn, NULL, WL_SOCKET_WRITEABLE, deadline, &woken))
		{
			redis_end_wait(woken);
			redis_report_timeout(conn, NULL, what);
		}
	}
	redis_end_wait(woken);
}

/* Closes a connection whose protocol state is unknown; the next use reconnects. */
void
polyglot_redis_discard_connection(RedisConn *conn)
{
	discard_conn(conn);
}

/*
 * The nodes a command for every node goes to (SCAN, DBSIZE): a cluster's
 * primaries, or the one server.
 */
int
polyglot_redis_node_count(RedisConn *conn)
{
	check_connected(conn);
	if (conn->is_cluster)
		return polyglot_redis_cluster_nodes((struct RedisCluster *) conn->base.conn);
	return 1;
}

/* A command sent to node k of polyglot_redis_node_count(), and its reply */
redisReply *
polyglot_redis_node_command_argv(RedisConn *conn, int node, int argc, const char **argv,
								 const size_t *argvlen)
{
	RedisConn  *target;

	check_connected(conn);
	if (!conn->is_cluster)
		return polyglot_redis_command_argv(conn, argc, argv, argvlen);
	target = polyglot_redis_cluster_node(conn, node);
	PG_TRY();
	{
		if (redisAppendCommandArgv(redis_ctx(target), argc, argv, argvlen) != REDIS_OK)
			polyglot_redis_report_error(target, NULL, argv[0]);
	}
	PG_CATCH();
	{
		discard_conn(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	{
		redisReply *volatile reply = NULL;

		PG_TRY();
		{
			reply = get_reply_on(target, NULL, argv[0]);
		}
		PG_CATCH();
		{
			discard_conn(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
		return reply;
	}
}

/* "host:port" of node k of polyglot_redis_node_count(), for EXPLAIN and messages */
char *
polyglot_redis_node_name(RedisConn *conn, int node)
{
	if (!conn->is_cluster)
		return pstrdup(conn->endpoint);
	return pstrdup(polyglot_redis_cluster_node(conn, node)->endpoint);
}

/*
 * The version of a cluster's slot map a pinned batch was sent with (0 for
 * one server): when it changes, what was sent before may be sent again
 * (MOVED) after what is sent now.
 */
uint64
polyglot_redis_map_epoch(RedisConn *conn, const PolyglotConnPin *pin)
{
	if (!conn->is_cluster)
		return 0;
	return polyglot_redis_cluster_epoch((struct RedisCluster *)
										(pin ? pin->handle : conn->base.conn));
}

/* The I/O error of a context (NULL: not connected), and whether it was a timeout */
static void
io_error_detail(redisContext *ctx, char *detail, size_t len, bool *timed_out)
{
	if (ctx)
		strlcpy(detail, ctx->errstr, len);
	else
		strlcpy(detail, "not connected", len);
	/* hiredis reports a read timeout as EAGAIN */
	*timed_out = ctx && ctx->err == REDIS_ERR_IO && strcmp(detail, strerror(EAGAIN)) == 0;
#ifdef POLYGLOT_HIREDIS_SSL
	/* a TLS connection's reason (an alert such as "certificate required") */
	if (ctx && ctx->privctx && ERR_peek_error() != 0)
	{
		const char *reason = ERR_reason_error_string(ERR_peek_error());

		if (reason)
		{
			size_t		used;

			/* hiredis's text of a TLS error may be the errno of no failure */
			if (strcmp(detail, strerror(0)) == 0)
				detail[0] = '\0';
			used = strlen(detail);
			snprintf(detail + used, len - used, "%sTLS: %s", used ? ", " : "", reason);
		}
		ERR_clear_error();
	}
#endif
}

/* Never returns */
static void
report_io_error(RedisConn *conn, const char *detail, bool timed_out, const char *what)
{
	if (timed_out)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("Redis server \"%s\" did not answer %s in time", conn->servername, what),
				 errdetail_internal("No reply within io_timeout %dms (%s).",
									conn->io_timeout_ms, conn->endpoint)));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("lost connection to Redis server \"%s\" during %s",
					conn->servername, what),
			 errdetail_internal("%s (%s).", detail, conn->endpoint)));
}

/*
 * The one way Redis errors are reported.  With a reply, frees it and
 * reports the server's error text; without one, reports the context's I/O
 * error and drops the connection, which is no longer usable.  Never returns.
 */
void
polyglot_redis_report_error(RedisConn *conn, redisReply *reply, const char *what)
{
	char		detail[1024];
	bool		timed_out = false;

	if (reply)
	{
		if (reply->type == REDIS_REPLY_ERROR && reply->str)
			strlcpy(detail, reply->str, sizeof(detail));
		else
			snprintf(detail, sizeof(detail), "unexpected reply of type %d", reply->type);
		freeReplyObject(reply);

		/*
		 * A replica (the primary of before a failover) refuses writes: the
		 * next statement connects afresh, and finds the primary again when
		 * Sentinels name it.
		 */
		if (strncmp(detail, "READONLY", 8) == 0)
			discard_conn(conn);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Redis server \"%s\" returned an error for %s",
						conn->servername, what),
				 errdetail_internal("%s", detail)));
	}

	if (conn->is_cluster)
		strlcpy(detail, "the cluster connection failed", sizeof(detail));
	else
		io_error_detail(redis_ctx(conn), detail, sizeof(detail), &timed_out);
	timed_out = timed_out && !conn->is_cluster;
	discard_conn(conn);
	report_io_error(conn, detail, timed_out, what);
	pg_unreachable();
}

/*
 * polyglot_redis_report_error() for an I/O error on a pinned context, which may no
 * longer be its entry's: reports that context's error, and drops it from
 * the entry if it is still there (the pin keeps it until released).
 * Never returns.
 */
void
polyglot_redis_report_pinned_error(RedisConn *conn, const PolyglotConnPin *pin, const char *what)
{
	char		detail[1024];
	bool		timed_out;

	io_error_detail((redisContext *) pin->handle, detail, sizeof(detail), &timed_out);
	polyglot_conncache_discard_pinned(pin);
	report_io_error(conn, detail, timed_out, what);
	pg_unreachable();
}

/*
 * Extracts "field:value" from an INFO reply into buf; returns false when the
 * field is missing.
 */
static bool
info_field(const char *info, const char *field, char *buf, size_t buflen)
{
	size_t		flen = strlen(field);
	const char *p = info;

	while (p && *p)
	{
		if (strncmp(p, field, flen) == 0 && p[flen] == ':')
		{
			const char *v = p + flen + 1;
			size_t		n = strcspn(v, "\r\n");

			if (n >= buflen)
				n = buflen - 1;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

/*
 * polyglot.ping() for a Redis server: PING round trip and the server's
 * redis_version.
 */
Jsonb *
polyglot_redis_ping(ForeignServer *server, UserMapping *user)
{
	RedisConn  *conn = polyglot_redis_get_connection(server, user);
	const char *ping_argv[] = {"PING"};
	const char *info_argv[] = {"INFO", "server"};
	redisReply *reply;
	instr_time	start;
	double		latency;
	char		version[64] = "unknown";

	INSTR_TIME_SET_CURRENT(start);
	reply = polyglot_redis_command_argv(conn, 1, ping_argv, NULL);
	latency = polyglot_elapsed_ms(start);
	if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "PONG") != 0)
		polyglot_redis_report_error(conn, reply, "PING");
	freeReplyObject(reply);

	reply = polyglot_redis_command_argv(conn, 2, info_argv, NULL);
	if (reply->type != REDIS_REPLY_STRING)
		polyglot_redis_report_error(conn, reply, "INFO");
	(void) info_field(reply->str, "redis_version", version, sizeof(version));
	freeReplyObject(reply);

	return polyglot_ping_result("redis", server->servername, latency, version, NULL);
}
