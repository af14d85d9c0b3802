/*-------------------------------------------------------------------------
 *
 * redis.h
 *		Declarations shared by the Redis files: options, connections,
 *		error reporting and the foreign tables' layout and state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_REDIS_H
#define POLYGLOT_REDIS_H

#include <hiredis.h>

#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "pg_polyglot.h"

typedef struct RedisConnOptions
{
	PolyglotConnOptions common;
	const char *host;
	int			port;
	int			db;
	const char *sentinels;		/* "host:port,...", or NULL: host and port */
	const char *master_name;	/* with sentinels */
	const char *sentinel_user;	/* from the user mapping: AUTH to the Sentinels */
	const char *sentinel_password;
	const char *cluster;		/* seed nodes "host:port,...", or NULL */
	int			wait_replicas;	/* sync batches end with WAIT this many */
} RedisConnOptions;

/* The options of a sync route, as the sink reads them */
typedef enum RedisMode
{
	REDIS_MODE_JSON,
	REDIS_MODE_HASH,
	REDIS_MODE_INVALIDATE,
	REDIS_MODE_PUBLISH,
	REDIS_MODE_STREAM
} RedisMode;

typedef struct RedisRouteOptions
{
	RedisMode	mode;
	const char *key;			/* the key template, or NULL */
	const char *ttl;			/* seconds, as Redis reads them, or NULL */
	const char *channel;		/* publish mode's, or NULL */
	const char *stream;			/* stream mode's stream key, or NULL */
	const char *seen;			/* stream mode: the hash of each key's last
								 * position (polyglot_redis_stream_seen_key) */
	const char *maxlen;			/* stream mode: MAXLEN ~ this, as Redis reads it */
} RedisRouteOptions;

struct PolyglotRoute;

/* in redis_option.c */
extern const PolyglotOption polyglot_redis_options[];
extern char *polyglot_redis_endpoint(ForeignServer *server);
extern const PolyglotRouteOption polyglot_redis_route_options[];
extern void polyglot_redis_check_route(PolyglotRouteCheck *check);
extern const RedisRouteOptions *polyglot_redis_route(struct PolyglotRoute *route);
extern char *polyglot_redis_stream_seen_key(const char *stream);
extern int	polyglot_redis_key_placeholder(const char *p, List *key_columns, size_t *len);
extern void polyglot_redis_get_options(ForeignServer *server, UserMapping *user,
							  RedisConnOptions *opts);
extern void polyglot_redis_check_options(List *options, Oid catalog);
extern int	polyglot_redis_parse_addresses(const char *list, char ***hosts, int **ports,
										   char **bad);

/* in redis_connection.c */
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
	int			wait_replicas;	/* server option wait_replicas */
	bool		is_cluster;		/* base.conn is a RedisCluster, not a redisContext */
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
pg_noreturn extern void polyglot_redis_report_error(RedisConn *conn, redisReply *reply,
												   const char *what);
pg_noreturn extern void polyglot_redis_report_pinned_error(RedisConn *conn,
														  const PolyglotConnPin *pin,
														  const char *what);

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
extern void polyglot_redis_get_replies(RedisConn *conn, int n, redisReply **replies,
									   const char *what);
extern redisReply *polyglot_redis_get_pinned_reply(RedisConn *conn, const PolyglotConnPin *pin,
										  const char *what);
extern void polyglot_redis_flush(RedisConn *conn, const char *what);
extern int	polyglot_redis_node_count(RedisConn *conn);
extern redisReply *polyglot_redis_node_command_argv(RedisConn *conn, int node, int argc,
												   const char **argv, const size_t *argvlen);
extern char *polyglot_redis_node_name(RedisConn *conn, int node);
extern uint64 polyglot_redis_map_epoch(RedisConn *conn, const PolyglotConnPin *pin);

/* in redis_connection.c, for redis_cluster.c: one node's connection */
extern void polyglot_redis_node_connect(RedisConn *node, const RedisConnOptions *opts);
extern redisReply *polyglot_redis_node_reply(RedisConn *node, const char *what);
extern void polyglot_redis_node_flush(RedisConn *node, const char *what);
extern void polyglot_redis_node_append(RedisConn *node, int argc, const char **argv,
									   const size_t *argvlen);

/* in redis_cluster.c: a Redis Cluster behind one connection */
struct RedisCluster;
extern uint16 polyglot_redis_key_slot(const char *key, size_t len);
extern struct RedisCluster *polyglot_redis_cluster_connect(RedisConn *conn,
														   const RedisConnOptions *opts);
extern void polyglot_redis_cluster_free(void *handle);
extern void polyglot_redis_cluster_append(RedisConn *conn, int argc, const char **argv,
										  const size_t *argvlen);
extern redisReply *polyglot_redis_cluster_reply(RedisConn *conn, const PolyglotConnPin *pin,
												const char *what);
extern void polyglot_redis_cluster_flush(RedisConn *conn, const PolyglotConnPin *pin,
										 const char *what);
extern int	polyglot_redis_cluster_nodes(struct RedisCluster *cluster);
extern RedisConn *polyglot_redis_cluster_node(RedisConn *conn, int node);
extern uint64 polyglot_redis_cluster_epoch(struct RedisCluster *cluster);

/* Foreign tables: a table's layout, its planner info and its scan state */

/* The types a foreign table reads (option type) */
typedef enum RedisTableType
{
	RT_STRING,
	RT_HASH,
	RT_LIST,
	RT_SET,
	RT_ZSET
} RedisTableType;

/* What a column holds */
typedef enum RedisRole
{
	RR_NONE,					/* dropped */
	RR_KEY,
	RR_VALUE,
	RR_TTL,
	RR_FIELD,
	RR_INDEX,
	RR_MEMBER,
	RR_SCORE,
	RR_FIELDS					/* a hash as one jsonb object */
} RedisRole;

/* A table's layout: type, prefix and the attnum (0: none) of each role */
typedef struct RedisTable
{
	RedisTableType type;
	bool		cluster;		/* its server is a Redis Cluster */
	char	   *prefix;
	int			batch_size;
	int			natts;
	RedisRole  *roles;			/* by attnum - 1 */
	int			att[RR_FIELDS + 1]; /* by role: attnum, or 0 */
} RedisTable;

/* The sub-key of a row type: field, index or member */
#define SUBKEY_ROLE(t) ((t)->type == RT_HASH ? RR_FIELD : (t)->type == RT_LIST ? RR_INDEX : RR_MEMBER)
#define HAS_SUBKEY(t) ((t)->type != RT_STRING && (t)->att[RR_FIELDS] == 0)

/* How a scan finds its keys */
#define SCAN_ALL		0
#define SCAN_KEYS		1		/* the value is one key */
#define SCAN_KEY_ARRAY	2		/* the value is an array of keys */
#define SCAN_MATCH		3
#define SCAN_JOIN		4		/* the keys come from a Redis key join's batch */

#define REDIS_STARTUP_COST	10.0
#define REDIS_ROW_COST		0.01
#define REDIS_KEY_COST		0.05	/* per key looked up or scanned */

/* The planner's view of a Redis foreign table (baserel->fdw_private) */
typedef struct RedisRelInfo
{
	Oid			relid;
	RedisTable *table;
	int			mode;
	Expr	   *value;			/* the key(s), for SCAN_KEYS and SCAN_KEY_ARRAY */
	char	   *match;			/* the LIKE prefix for SCAN_MATCH */
	RestrictInfo *key_clause;	/* the clause the mode comes from */
} RedisRelInfo;

/* A row fetched from Redis, as bytes */
typedef struct RedisRow
{
	char	   *key;			/* without the prefix */
	size_t		keylen;
	char	   *sub;			/* field or member, or NULL */
	size_t		sublen;
	int64		index;			/* list index */
	char	   *value;			/* value, or score of a zset */
	size_t		valuelen;
	Jsonb	   *fields;			/* a whole hash */
	int64		pttl;			/* -1: no expiry */
} RedisRow;

typedef struct RedisScanState
{
	RedisConn  *conn;
	Relation	relation;
	RedisTable *table;
	int			mode;
	char	   *match;
	bool	   *wanted;
	bool		want_ttl;
	bool		collect_first;	/* the statement writes: SCAN all keys first */
	ExprState  *value_state;
	Oid		   *typinput;
	Oid		   *typioparam;
	/* per execution */
	bool		started;
	bool		collected;		/* collect_first: st->keys holds every key */
	bool		done;			/* no more keys */
	char	   *cursor;			/* SCAN cursor, "0" to start */
	int			scan_node;		/* the node SCAN runs on (a cluster's nth primary) */
	List	   *keys;			/* SCAN_KEYS / SCAN_KEY_ARRAY: keys still to fetch */
	HTAB	   *seen;			/* keys a SCAN returned already */
	RedisRow   *rows;
	int			nrows;
	int			next_row;
	int64		round_trips;	/* for EXPLAIN ANALYZE */
	MemoryContext exec_cxt;		/* reset by a rescan */
	MemoryContext batch_cxt;	/* the current batch of rows */
	MemoryContext row_cxt;
	const char *last_key;		/* the key of the row returned last */
	const char *current_key;	/* for the error context */
	const char *current_column;
} RedisScanState;

/* in redis_fdw.c */
extern const char *polyglot_redis_type_name(RedisTableType type);
extern RedisTable *polyglot_redis_load_table(Oid relid);
extern RedisConn *polyglot_redis_table_connection(Oid relid, Oid userid);
extern double polyglot_redis_rows_per_key(RedisTable *t);
extern char *polyglot_redis_full_key(RedisTable *t, const char *key, size_t keylen,
									 size_t *len);
extern void polyglot_redis_start_scan(RedisScanState *st, ExprContext *econtext);
extern bool polyglot_redis_is_fdw(FdwRoutine *routine);

/* in redis_query.c */
extern int	polyglot_redis_key_lookup(Expr *clause, RelOptInfo *baserel, RedisTable *t,
									  Expr **value, char **match);
extern const char *polyglot_redis_read_command(RedisTableType type);
extern void polyglot_redis_scan_pattern(StringInfo buf, RedisTable *t, const char *match);
extern char *polyglot_redis_scan_commands(RedisTable *t, int mode, const char *match,
										  bool want_ttl);

/* in redis_join.c */
extern void polyglot_redis_join_init(void);

/* in redis_modify.c */
extern void polyglot_redis_modify_routine(FdwRoutine *routine);

#endif							/* POLYGLOT_REDIS_H */
