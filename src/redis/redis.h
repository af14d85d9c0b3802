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
/*
 * The replies a scan is owed on a connection: a pipeline it sent and reads
 * later, so that Redis works on it while the scan does other work.  Whoever
 * sends on the connection meanwhile first reads them into replies
 * (polyglot_redis_settle()), which keeps every exchange in step.  The
 * handle they were sent on is pinned until they are read: when the entry
 * drops it meanwhile (its server or user mapping changed), the owner reads
 * them there.
 */
typedef struct RedisPending
{
	int			expected;		/* replies owed ... */
	int			got;			/* ... and read so far, into replies */
	redisReply **replies;		/* the owner's, with room for expected */
	PolyglotConnPin pin;		/* the handle they were sent on, while owed */
	bool		lost;			/* an I/O error or a cancel put that handle
								 * out of step: they never come */
} RedisPending;

typedef struct RedisConn
{
	PolyglotConnEntry base;		/* base.conn is the redisContext */
	char		servername[NAMEDATALEN];
	char		endpoint[300];	/* host:port, for messages */
	int			io_timeout_ms;	/* for messages */
	int			wait_replicas;	/* server option wait_replicas */
	bool		is_cluster;		/* base.conn is a RedisCluster, not a redisContext */
	RedisPending *pending;		/* a scan's pipeline in flight, or NULL */
	int			orphans;		/* replies of a scan that an error ended, still
								 * to come on the handle of orphans_generation
								 * (before any of pending's): read and dropped
								 * before the next command */
	uint64		orphans_generation;
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
extern void polyglot_redis_free_context(redisContext *ctx);
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
extern void polyglot_redis_format_command(StringInfo buf, int nargs);
extern void polyglot_redis_format_arg(StringInfo buf, const char *a, size_t alen,
									  const char *b, size_t blen);
extern void polyglot_redis_append_formatted(RedisConn *conn, const char *buf, size_t len);
extern void polyglot_redis_settle(RedisConn *conn);
extern void polyglot_redis_send_owed(RedisConn *conn, RedisPending *p, const char *buf,
									 size_t len, int ncommands);
extern void polyglot_redis_collect(RedisConn *conn, RedisPending *p);
extern void polyglot_redis_drain(RedisConn *conn, RedisPending *p);
extern void polyglot_redis_abandon(RedisConn *conn, RedisPending *p);
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

/* A key without the table's prefix: its bytes, NUL-terminated, and length */
typedef struct RedisKey
{
	const char *str;
	size_t		len;
} RedisKey;

/* A set of keys, numbered in the order they enter (redis_keyset.c) */
typedef struct RedisKeySet RedisKeySet;

extern RedisKeySet *polyglot_redis_keyset_create(MemoryContext cxt, uint32 nelements);
extern uint32 polyglot_redis_keyset_hash(const char *str, size_t len);
extern void polyglot_redis_keyset_prefetch(RedisKeySet *set, uint32 hash);
extern int	polyglot_redis_keyset_enter_hash(RedisKeySet *set, const char *str, size_t len,
											 uint32 hash, bool *found);
extern int	polyglot_redis_keyset_enter(RedisKeySet *set, const char *str, size_t len,
										bool *found);
extern int	polyglot_redis_keyset_find(RedisKeySet *set, const char *str, size_t len);
extern void polyglot_redis_keyset_move(RedisKeySet *set, int n, const char *str);

/*
 * A row fetched from Redis: pointers into the batch's replies (NUL-terminated
 * by hiredis, zero bytes and all) and keys, never copies.
 */
typedef struct RedisRow
{
	const char *key;			/* without the prefix */
	size_t		keylen;
	int			key_index;		/* the key's position among the scan's keys */
	const char *sub;			/* field or member, or NULL */
	size_t		sublen;
	int64		index;			/* list index */
	const char *value;			/* value, or score of a zset */
	size_t		valuelen;
	redisReply *hash;			/* a whole hash (its HGETALL reply) */
	int64		pttl;			/* -1: no expiry */
} RedisRow;

/* How a scan turns a Redis string into a column's value (redisBeginForeignScan) */
typedef struct RedisColumnInput
{
	Oid			base;			/* the column's base type */
	bool		plain_text;		/* text itself: no input function */
	FmgrInfo	input;			/* the type's input function */
	Oid			ioparam;
	int32		typmod;
	void	   *domain_extra;	/* domain_check()'s cache, for a bytea domain */
} RedisColumnInput;

typedef struct RedisScanState
{
	RedisConn  *conn;
	Relation	relation;
	RedisTable *table;
	int			mode;
	char	   *match;
	char	   *pattern;		/* SCAN's MATCH pattern */
	char		count[16];		/* SCAN's COUNT: batch_size */
	bool	   *wanted;
	bool		want_ttl;
	bool		collect_first;	/* the statement writes: SCAN all keys first */
	ExprState  *value_state;
	RedisColumnInput *inputs;	/* by attnum - 1, for the wanted columns */
	/* per execution */
	bool		started;
	bool		collected;		/* collect_first: st->keys holds every key */
	bool		done;			/* no more keys to ask for (SCAN is over) */
	char		cursor[32];		/* SCAN cursor, "0" to start */
	int			scan_node;		/* the node SCAN runs on (a cluster's nth primary) */
	RedisKey   *keys;			/* the keys to fetch: keys[next_key .. nkeys - 1] */
	int			nkeys;
	int			next_key;
	int			keys_size;		/* allocated */
	RedisKey   *page;			/* SCAN: the keys of the next page, in hand */
	int			npage;
	int			page_size;		/* allocated */
	bool		have_page;		/* page holds the next page (maybe empty) */
	RedisKeySet *seen;			/* keys a SCAN (or a key array) gave already */
	int			expected_keys;	/* the planner's estimate, capped: seen's first size */
	char	   *arena;			/* copies of the keys SCAN returned (exec_cxt) */
	size_t		arena_left;
	StringInfoData request;		/* a pipeline's commands, formatted */
	RedisRow   *rows;			/* the batch's (query_cxt: reused) */
	int			nrows;
	int			rows_size;		/* allocated */
	int			next_row;
	redisReply **replies;		/* the batch's replies (query_cxt: reused) */
	int			replies_size;	/* allocated */
	RedisPending pending;		/* the pipeline in flight, owed to the scan:
								 * the next batch's reads (one server) */
	int			pending_size;	/* room in pending.replies */
	bool		in_flight;		/* pending holds the reads of flight_keys */
	RedisKey   *flight_keys;
	int			nflight;
	int			flight_base;	/* their position among the scan's keys */
	bool		flight_scan;	/* the reads are followed by the next SCAN call */
	int			join_unsent;	/* a key join's keys formatted, not sent yet */
	int			batches;		/* batches made in this execution */
	int64		round_trips;	/* for EXPLAIN ANALYZE */
	MemoryContext query_cxt;	/* the query's */
	MemoryContext exec_cxt;		/* reset by a rescan */
	MemoryContext batch_cxt;	/* the current batch of rows and its replies */
	MemoryContext row_cxt;		/* a row's values (a key join's inner scan:
								 * batch_cxt, for the batch) */
	int			last_key_index; /* the key of the row returned last, among keys */
	const char *current_key;	/* for the error context */
	const char *current_column;
} RedisScanState;

/* in redis_fdw.c */
extern const char *polyglot_redis_type_name(RedisTableType type);
extern RedisTable *polyglot_redis_load_table(Oid relid);
extern RedisConn *polyglot_redis_table_connection(Oid relid, Oid userid);
extern void polyglot_redis_forget_key_counts(void);
extern double polyglot_redis_rows_per_key(RedisTable *t);
extern char *polyglot_redis_full_key(RedisTable *t, const char *key, size_t keylen,
									 size_t *len);
extern void polyglot_redis_start_scan(RedisScanState *st, ExprContext *econtext);
extern void polyglot_redis_join_start(RedisScanState *st, int max_keys);
extern void polyglot_redis_join_add_key(RedisScanState *st, RedisKey key);
extern void polyglot_redis_join_keys(RedisScanState *st, RedisKey *keys, int nkeys);
extern bool polyglot_redis_is_fdw(FdwRoutine *routine);

/* in redis_query.c */
extern int	polyglot_redis_key_lookup(Expr *clause, RelOptInfo *baserel, RedisTable *t,
									  Expr **value, char **match);
extern const char *polyglot_redis_read_command(RedisTableType type);
extern void polyglot_redis_scan_pattern(StringInfo buf, RedisTable *t, const char *match);
extern char *polyglot_redis_scan_commands(RedisTable *t, int mode, const char *match,
										  bool want_ttl, bool next_scan_pipelined);

/* in redis_join.c */
extern void polyglot_redis_join_init(void);

/* in redis_modify.c */
extern void polyglot_redis_modify_routine(FdwRoutine *routine);

#endif							/* POLYGLOT_REDIS_H */
