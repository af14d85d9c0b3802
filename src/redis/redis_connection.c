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
#include "utils/timestamp.h"

#include "pg_polyglot.h"
#include "redis/redis.h"

static void redis_disconnect(void *handle);

static PolyglotConnCache redis_cache = {
	.store = "pg_polyglot Redis connections",
	.entry_size = sizeof(RedisConn),
	.disconnect = redis_disconnect,
};

static void
redis_disconnect(void *handle)
{
	redisFree((redisContext *) handle);
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
		polyglot_conncache_discard(&redis_cache, &conn->base);
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
		int			rc;

		redis_check_interrupts(conn, pin);
		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (timeout <= 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | event | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   io_context(conn, pin)->fd, timeout, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			*woken = true;
		}
		if (rc & event)
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
 * no more than that reply.  NULL after an I/O error or a timeout, which the
 * caller reports (with *timed_out telling them apart); a cancel or
 * termination throws after closing the connection.
 */
static redisReply *
redis_roundtrip(RedisConn *conn, const PolyglotConnPin *pin, TimestampTz deadline,
				bool *timed_out)
{
	redisContext *ctx = io_context(conn, pin);
	void	   *reply = NULL;
	int			done = 0;
	bool		woken = false;

	*timed_out = false;
	if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK)
		return NULL;
	if (reply == NULL)
	{
		for (;;)
		{
			if (redisBufferWrite(ctx, &done) != REDIS_OK)
				break;
			if (done)
				break;
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
			if (!redis_wait_socket(conn, pin, WL_SOCKET_READABLE, deadline, &woken))
			{
				*timed_out = true;
				break;
			}
			if (redisBufferRead(ctx) != REDIS_OK)
				break;
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
		reply = redis_roundtrip(conn, NULL, deadline_in(io_timeout_ms), &timed_out);
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
		strlcpy(detail, redis_ctx(conn)->errstr, sizeof(detail));
	if (reply)
		freeReplyObject(reply);
	polyglot_conncache_discard(&redis_cache, &conn->base);

	ereport(ERROR,
			(errcode(io_error ? ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION
					 : ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("could not connect to Redis server \"%s\"", conn->servername),
			 errdetail_internal("%s failed at %s: %s", step, conn->endpoint, detail),
			 strcmp(step, "AUTH") == 0 && !io_error ?
			 errhint("Check the user and password options of the user mapping.") : 0));
}

/* Reports a failed connect and frees its context.  Never returns. */
static void
redis_report_connect_failure(RedisConn *conn, int connect_timeout_ms, const char *detail)
{
	char		copy[512];

	strlcpy(copy, detail, sizeof(copy));
	polyglot_conncache_discard(&redis_cache, &conn->base);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not connect to Redis server \"%s\"", conn->servername),
			 errdetail_internal("%s (%s, connect_timeout %dms).", copy,
								conn->endpoint, connect_timeout_ms)));
}

/*
 * Connects conn (its base.conn is NULL) and sets it up: AUTH, SELECT.  The
 * TCP connect waits in redis_wait_socket(), so a cancel interrupts it too.
 * On any error the context is freed and base.conn is NULL again.
 */
static void
redis_connect(RedisConn *conn, const RedisConnOptions *opts)
{
	redisContext *ctx;
	bool		woken = false;
	bool		ready;
	int			so_error = 0;
	socklen_t	len = sizeof(so_error);

	if (opts->common.user && !opts->common.password)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("user mapping for Redis server \"%s\" has a user but no password",
						conn->servername),
				 errhint("Add a password option to the user mapping.")));

	ctx = redisConnectNonBlock(opts->host, opts->port);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to Redis server \"%s\"",
						conn->servername)));
	conn->base.conn = ctx;
	if (ctx->err)
		redis_report_connect_failure(conn, opts->common.connect_timeout_ms, ctx->errstr);

	ready = redis_wait_socket(conn, NULL, WL_SOCKET_WRITEABLE,
							  deadline_in(opts->common.connect_timeout_ms), &woken);
	redis_end_wait(woken);
	if (!ready)
		redis_report_connect_failure(conn, opts->common.connect_timeout_ms, strerror(ETIMEDOUT));
	if (getsockopt(ctx->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
		so_error = errno;
	if (so_error != 0)
		redis_report_connect_failure(conn, opts->common.connect_timeout_ms, strerror(so_error));

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

	conn = (RedisConn *) polyglot_conncache_entry(&redis_cache, server, user);
	if (conn->base.conn == NULL)
	{
		RedisConnOptions opts;

		polyglot_redis_get_options(server, user, &opts);
		strlcpy(conn->servername, server->servername, sizeof(conn->servername));
		snprintf(conn->endpoint, sizeof(conn->endpoint), "%s:%d", opts.host, opts.port);
		conn->io_timeout_ms = opts.common.io_timeout_ms;
		redis_connect(conn, &opts);
	}
	return conn;
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
	check_connected(conn);
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
 * Appends the command to the connection's output buffer (sent with the
 * pipeline's first read) and empties cmd for the next one.
 */
void
polyglot_redis_cmd_append(RedisConn *conn, RedisCmd *cmd)
{
	check_connected(conn);
	if (redisAppendCommandArgv(redis_ctx(conn), cmd->argc, cmd->argv, cmd->argvlen) != REDIS_OK)
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

	reply = redis_roundtrip(conn, pin, deadline_in(conn->io_timeout_ms), &timed_out);
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
	return get_reply_on(conn, NULL, what);
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
	return get_reply_on(conn, pin, what);
}

/*
 * Sends everything appended so far without waiting for replies, within
 * io_timeout.  Errors as polyglot_redis_get_reply().
 */
void
polyglot_redis_flush(RedisConn *conn, const char *what)
{
	redisContext *ctx;
	TimestampTz deadline = deadline_in(conn->io_timeout_ms);
	bool		woken = false;
	int			done = 0;

	check_connected(conn);
	ctx = redis_ctx(conn);
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
	polyglot_conncache_discard(&redis_cache, &conn->base);
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
	bool		timed_out;

	if (reply)
	{
		if (reply->type == REDIS_REPLY_ERROR && reply->str)
			strlcpy(detail, reply->str, sizeof(detail));
		else
			snprintf(detail, sizeof(detail), "unexpected reply of type %d", reply->type);
		freeReplyObject(reply);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Redis server \"%s\" returned an error for %s",
						conn->servername, what),
				 errdetail_internal("%s", detail)));
	}

	io_error_detail(redis_ctx(conn), detail, sizeof(detail), &timed_out);
	polyglot_conncache_discard(&redis_cache, &conn->base);
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
