/*-------------------------------------------------------------------------
 *
 * redis.h
 *		Declarations shared by the Redis files: options, connections and
 *		error reporting.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_REDIS_H
#define POLYGLOT_REDIS_H

#include <hiredis.h>

#include "foreign/foreign.h"

#include "pg_polyglot.h"

typedef struct RedisConnOptions
{
	PolyglotConnOptions common;
	const char *host;
	int			port;
	int			db;
} RedisConnOptions;

/* redis_option.c */
extern void redis_get_options(ForeignServer *server, UserMapping *user,
							  RedisConnOptions *opts);

/* redis_connection.c */
#include "common/conncache.h"

/*
 * A cached connection.  base.conn (the redisContext) is NULL until
 * connected and after redis_report_error() or redis_discard_connection()
 * dropped it; the entry outlives the handle.  The command functions below
 * ereport on a dropped connection rather than use it.
 */
typedef struct RedisConn
{
	PolyglotConnEntry base;		/* base.conn is the redisContext */
	char		servername[NAMEDATALEN];
	char		endpoint[300];	/* host:port, for messages */
	int			io_timeout_ms;	/* for messages */
} RedisConn;

/*
 * The context is non-blocking: hiredis' own blocking calls (redisCommand,
 * redisGetReply) would return no reply at once.  Every exchange goes
 * through the functions below, whose waits a cancel interrupts.
 */
#define redis_ctx(c) ((redisContext *) (c)->base.conn)

extern RedisConn *redis_get_connection(ForeignServer *server, UserMapping *user);
extern redisReply *redis_command_argv(RedisConn *conn, int argc,
									  const char **argv, const size_t *argvlen);
extern void redis_discard_connection(RedisConn *conn);
extern void redis_report_error(RedisConn *conn, redisReply *reply,
							   const char *what) pg_attribute_noreturn();
extern void redis_report_pinned_error(RedisConn *conn, const PolyglotConnPin *pin,
									  const char *what) pg_attribute_noreturn();

/* A command under construction, for pipelines (palloc'd arrays) */
typedef struct RedisCmd
{
	int			argc;
	const char **argv;
	size_t	   *argvlen;
	int			cap;
} RedisCmd;

extern void redis_cmd_init(RedisCmd *cmd, int cap);
extern void redis_cmd_arg_len(RedisCmd *cmd, const char *arg, size_t len);
extern void redis_cmd_arg(RedisCmd *cmd, const char *arg);
extern void redis_cmd_append(RedisConn *conn, RedisCmd *cmd);
extern redisReply *redis_get_reply(RedisConn *conn, const char *what);
extern redisReply *redis_get_pinned_reply(RedisConn *conn, const PolyglotConnPin *pin,
										  const char *what);
extern void redis_flush(RedisConn *conn, const char *what);

#endif							/* POLYGLOT_REDIS_H */
