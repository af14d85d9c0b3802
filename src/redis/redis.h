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

/* The options of a sync route, as the sink reads them */
typedef enum RedisMode
{
	REDIS_MODE_JSON,
	REDIS_MODE_HASH,
	REDIS_MODE_INVALIDATE,
	REDIS_MODE_PUBLISH
} RedisMode;

typedef struct RedisRouteOptions
{
	RedisMode	mode;
	const char *key;			/* the key template, or NULL */
	const char *ttl;			/* seconds, as Redis reads them, or NULL */
	const char *channel;		/* publish mode's, or NULL */
} RedisRouteOptions;

struct PolyglotRoute;

/* redis_option.c */
extern const PolyglotOption polyglot_redis_options[];
extern char *polyglot_redis_endpoint(ForeignServer *server);
extern const PolyglotRouteOption polyglot_redis_route_options[];
extern void polyglot_redis_check_route(PolyglotRouteCheck *check);
extern const RedisRouteOptions *polyglot_redis_route(struct PolyglotRoute *route);
extern int	polyglot_redis_key_placeholder(const char *p, List *key_columns, size_t *len);
extern void polyglot_redis_get_options(ForeignServer *server, UserMapping *user,
							  RedisConnOptions *opts);

/* redis_connection.c */
#include "common/conncache.h"

/*
 * A cached connection.  base.conn (the redisContext) is NULL until
 * connected and after polyglot_redis_report_error() or polyglot_redis_discard_connection()
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

extern RedisConn *polyglot_redis_get_connection(ForeignServer *server, UserMapping *user);
extern redisReply *polyglot_redis_command_argv(RedisConn *conn, int argc,
									  const char **argv, const size_t *argvlen);
extern void polyglot_redis_discard_connection(RedisConn *conn);
extern void polyglot_redis_report_error(RedisConn *conn, redisReply *reply,
							   const char *what) pg_attribute_noreturn();
extern void polyglot_redis_report_pinned_error(RedisConn *conn, const PolyglotConnPin *pin,
									  const char *what) pg_attribute_noreturn();

/* A command under construction, for pipelines (palloc'd arrays) */
typedef struct RedisCmd
{
	int			argc;
	const char **argv;
	size_t	   *argvlen;
	int			cap;
} RedisCmd;

extern void polyglot_redis_cmd_init(RedisCmd *cmd, int cap);
extern void polyglot_redis_cmd_arg_len(RedisCmd *cmd, const char *arg, size_t len);
extern void polyglot_redis_cmd_arg(RedisCmd *cmd, const char *arg);
extern void polyglot_redis_cmd_append(RedisConn *conn, RedisCmd *cmd);
extern redisReply *polyglot_redis_get_reply(RedisConn *conn, const char *what);
extern redisReply *polyglot_redis_get_pinned_reply(RedisConn *conn, const PolyglotConnPin *pin,
										  const char *what);
extern void polyglot_redis_flush(RedisConn *conn, const char *what);

#endif							/* POLYGLOT_REDIS_H */
