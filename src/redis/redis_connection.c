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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>

#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

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

static struct timeval
ms_to_timeval(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/*
 * Sends one command on a context that is being set up; on failure frees the
 * context and ereports, naming the step.
 */
static void
redis_setup_command(redisContext *ctx, const char *servername,
					const char *endpoint, const char *step,
					int argc, const char **argv)
{
	redisReply *reply;
	char		detail[512];
	bool		io_error;

	reply = redisCommandArgv(ctx, argc, argv, NULL);
	if (reply && reply->type != REDIS_REPLY_ERROR)
	{
		freeReplyObject(reply);
		return;
	}
	io_error = (reply == NULL);
	if (reply)
		strlcpy(detail, reply->str ? reply->str : "unknown error", sizeof(detail));
	else
		strlcpy(detail, ctx->errstr, sizeof(detail));
	if (reply)
		freeReplyObject(reply);
	redisFree(ctx);

	ereport(ERROR,
			(errcode(io_error ? ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION
					 : ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("could not connect to Redis server \"%s\"", servername),
			 errdetail_internal("%s failed at %s: %s", step, endpoint, detail),
			 strcmp(step, "AUTH") == 0 && !io_error ?
			 errhint("Check the user and password options of the user mapping.") : 0));
}

static redisContext *
redis_connect(RedisConn *conn, const RedisConnOptions *opts)
{
	redisContext *ctx;

	ctx = redisConnectWithTimeout(opts->host, opts->port,
								  ms_to_timeval(opts->common.connect_timeout_ms));
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to Redis server \"%s\"",
						conn->servername)));
	if (ctx->err)
	{
		char		detail[512];

		strlcpy(detail, ctx->errstr, sizeof(detail));
		redisFree(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to Redis server \"%s\"", conn->servername),
				 errdetail_internal("%s (%s, connect_timeout %dms).", detail,
									conn->endpoint, opts->common.connect_timeout_ms)));
	}
	if (redisSetTimeout(ctx, ms_to_timeval(opts->common.io_timeout_ms)) != REDIS_OK)
	{
		redisFree(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not set the I/O timeout of the connection to Redis server \"%s\"",
						conn->servername)));
	}

	if (opts->common.password)
	{
		const char *argv[3];
		int			argc = 0;

		argv[argc++] = "AUTH";
		if (opts->common.user)
			argv[argc++] = opts->common.user;
		argv[argc++] = opts->common.password;
		redis_setup_command(ctx, conn->servername, conn->endpoint, "AUTH", argc, argv);
	}
	else if (opts->common.user)
	{
		redisFree(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("user mapping for Redis server \"%s\" has a user but no password",
						conn->servername),
				 errhint("Add a password option to the user mapping.")));
	}

	if (opts->db != 0)
	{
		char		dbstr[16];
		const char *argv[2];

		snprintf(dbstr, sizeof(dbstr), "%d", opts->db);
		argv[0] = "SELECT";
		argv[1] = dbstr;
		redis_setup_command(ctx, conn->servername, conn->endpoint, "SELECT", 2, argv);
	}
	return ctx;
}

/*
 * Returns the cached connection for a server and optional user mapping,
 * connecting first if needed.  Ereports when the server cannot be reached or
 * refuses the credentials; the returned entry is valid for the life of the
 * backend, its context until an error drops it.
 */
RedisConn *
redis_get_connection(ForeignServer *server, UserMapping *user)
{
	RedisConn  *conn;

	conn = (RedisConn *) polyglot_conncache_entry(&redis_cache, server, user);
	if (conn->base.conn == NULL)
	{
		RedisConnOptions opts;

		redis_get_options(server, user, &opts);
		strlcpy(conn->servername, server->servername, sizeof(conn->servername));
		snprintf(conn->endpoint, sizeof(conn->endpoint), "%s:%d", opts.host, opts.port);
		conn->io_timeout_ms = opts.common.io_timeout_ms;
		conn->base.conn = redis_connect(conn, &opts);
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
redis_command_argv(RedisConn *conn, int argc, const char **argv,
				   const size_t *argvlen)
{
	redisReply *reply;

	check_connected(conn);
	reply = redisCommandArgv(redis_ctx(conn), argc, argv, argvlen);
	if (reply == NULL)
		redis_report_error(conn, NULL, argv[0]);
	return reply;
}

/* Starts an empty command with room for cap arguments (it grows) */
void
redis_cmd_init(RedisCmd *cmd, int cap)
{
	cmd->argc = 0;
	cmd->cap = Max(cap, 1);
	cmd->argv = palloc(sizeof(char *) * cmd->cap);
	cmd->argvlen = palloc(sizeof(size_t) * cmd->cap);
}

/* Adds an argument of len bytes (binary safe); arg must live until appended */
void
redis_cmd_arg_len(RedisCmd *cmd, const char *arg, size_t len)
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
redis_cmd_arg(RedisCmd *cmd, const char *arg)
{
	redis_cmd_arg_len(cmd, arg, strlen(arg));
}

/*
 * Appends the command to the connection's output buffer (sent with the
 * pipeline's first read) and empties cmd for the next one.
 */
void
redis_cmd_append(RedisConn *conn, RedisCmd *cmd)
{
	check_connected(conn);
	if (redisAppendCommandArgv(redis_ctx(conn), cmd->argc, cmd->argv, cmd->argvlen) != REDIS_OK)
		redis_report_error(conn, NULL, "a pipelined command");
	cmd->argc = 0;
}

/*
 * The next reply of a pipeline (flushing what was appended first); the
 * caller frees it.  An I/O error drops the connection and ereports.
 */
redisReply *
redis_get_reply(RedisConn *conn, const char *what)
{
	void	   *reply = NULL;

	check_connected(conn);
	if (redisGetReply(redis_ctx(conn), &reply) != REDIS_OK || reply == NULL)
		redis_report_error(conn, NULL, what);
	return (redisReply *) reply;
}

/* Closes a connection whose protocol state is unknown; the next use reconnects. */
void
redis_discard_connection(RedisConn *conn)
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
redis_report_error(RedisConn *conn, redisReply *reply, const char *what)
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
 * redis_report_error() for an I/O error on a pinned context, which may no
 * longer be its entry's: reports that context's error, and drops it from
 * the entry if it is still there (the pin keeps it until released).
 * Never returns.
 */
void
redis_report_pinned_error(RedisConn *conn, const PolyglotConnPin *pin, const char *what)
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
redis_ping(ForeignServer *server, UserMapping *user)
{
	RedisConn  *conn = redis_get_connection(server, user);
	const char *ping_argv[] = {"PING"};
	const char *info_argv[] = {"INFO", "server"};
	redisReply *reply;
	instr_time	start;
	double		latency;
	char		version[64] = "unknown";

	INSTR_TIME_SET_CURRENT(start);
	reply = redis_command_argv(conn, 1, ping_argv, NULL);
	latency = polyglot_elapsed_ms(start);
	if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "PONG") != 0)
		redis_report_error(conn, reply, "PING");
	freeReplyObject(reply);

	reply = redis_command_argv(conn, 2, info_argv, NULL);
	if (reply->type != REDIS_REPLY_STRING)
		redis_report_error(conn, reply, "INFO");
	(void) info_field(reply->str, "redis_version", version, sizeof(version));
	freeReplyObject(reply);

	return polyglot_ping_result("redis", server->servername, latency, version, NULL);
}
