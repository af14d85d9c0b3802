/*-------------------------------------------------------------------------
 *
 * redis_cluster.c
 *		A Redis Cluster behind one connection: the slot map, one
 *		connection per node, pipelines split by node, MOVED and ASK.
 *
 * A server with option "cluster" gets, in its cache entry, a RedisCluster
 * instead of a redisContext.  The callers do not change: they append
 * commands (polyglot_redis_cmd_append) and read the replies in the order
 * they appended them (polyglot_redis_get_reply), and this file does the
 * rest:
 *
 * - The slot map comes from CLUSTER SLOTS, asked of a known node or of a
 *   seed node of the option, and again after a MOVED.
 * - Appended commands wait until the first read (or a flush); then each
 *   goes to the node that serves its key's slot, every node's commands as
 *   one pipeline, all nodes' pipelines written before any reply is read:
 *   one round trip per node, the nodes working in parallel.  A command
 *   without a key goes to the first node; MULTI ... EXEC goes as a unit to
 *   the node of its first key; WAIT goes to every node that got commands
 *   since the previous WAIT, and answers the least of their counts.
 * - A reply -MOVED sends the command again to the node named (which then
 *   serves the slot in the map, until the map is read again at the next
 *   pipeline); -ASK sends ASKING and the command to the node named, once.
 *   A unit is sent again whole.  A command redirected after its pipeline
 *   ended with WAIT gets a WAIT of its own on its new node, counted in the
 *   pipeline's.  At most MAX_REDIRECTS times per command; then the error
 *   reply goes to the caller.
 * - Per node, the replies owed are kept in order (the node's FIFO), so that
 *   a command sent again to a node that still owes replies of the
 *   pipeline is read after them: replies read early wait in their
 *   command until the caller asks.
 *
 * Per key order holds: the commands of one key go to one node in the
 * order appended, and a redirected command is read (and sent again)
 * before any later command's reply is handed out.
 *
 * Errors: a node that cannot be reached, an I/O error or a timeout drops
 * the whole cluster connection (every node's), whose pipeline is then in
 * no known state; the next use connects again and reads the map afresh.
 *
 * Everything lives in the cluster's memory context, under
 * TopMemoryContext; the pipeline's commands in a child reset when the
 * pipeline is empty.  Replies are hiredis' (malloc'd): those read early
 * are freed with the cluster if the caller never asks for them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "pg_polyglot.h"
#include "redis/redis.h"

#define CLUSTER_SLOTS	16384
#define MAX_REDIRECTS	5

/* Why a node owes a reply */
typedef enum OwedKind
{
	OWED_COMMAND,				/* the command's (first sending or again) */
	OWED_ASKING,				/* ASKING before a command sent after -ASK */
	OWED_WAIT					/* a WAIT, counted in command cmd (a WAIT) */
} OwedKind;

typedef struct Owed
{
	int			cmd;
	OwedKind	kind;
} Owed;

typedef struct ClusterNode
{
	RedisConn	conn;			/* conn.base.conn: the node's redisContext */
	char		host[256];
	int			port;
	bool		written;		/* got commands since the pipeline's last WAIT */
	bool		unflushed;		/* has commands appended but not written */
	Owed	   *owed;			/* replies owed, in order, from owed_head */
	int			owed_head;
	int			nowed;
	int			owed_cap;
} ClusterNode;

typedef struct ClusterCmd
{
	int			argc;
	char	  **argv;
	size_t	   *argvlen;
	int			slot;			/* of its key, or -1 */
	int			node;			/* where it went last */
	int			unit;			/* the index of its unit's MULTI, or -1 */
	int			unit_end;		/* a MULTI's: its EXEC's index, or -1 */
	bool		is_wait;
	bool		sent;
	int			owed;			/* its replies still unread (0 or 1) */
	redisReply *reply;			/* read, not yet handed out */
	/* a WAIT's */
	long long	wait_min;
	redisReply *wait_reply;		/* the first node's, carrying the least count */
} ClusterCmd;

typedef struct RedisCluster
{
	MemoryContext cxt;			/* the cluster's, freed with it */
	MemoryContext pipe_cxt;		/* the pipeline's commands */
	RedisConnOptions opts;		/* for the nodes (strings copied into cxt) */
	char	  **seed_hosts;
	int		   *seed_ports;
	int			nseeds;
	ClusterNode **nodes;
	int			nnodes;
	int			nodes_cap;
	int16		slot_node[CLUSTER_SLOTS];	/* index in nodes, -1: none */
	uint64		epoch;			/* of the map: counts its changes */
	bool		refresh_due;	/* read the map again at the next pipeline */
	/* the pipeline: commands appended whose replies were not handed out */
	ClusterCmd *cmds;
	int			ncmds;
	int			cmds_cap;
	int			next;			/* the next reply to hand out */
	int			first_unsent;
	int			open_unit;		/* the MULTI of a unit being appended, or -1 */
} RedisCluster;

#define cluster_of(conn, pin) \
	((RedisCluster *) ((pin) ? (pin)->handle : (conn)->base.conn))

/* ---------------------------------------------------------------- slots */

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster hashes keys */
static uint16
crc16(const char *buf, size_t len)
{
	uint16		crc = 0;
	size_t		i;
	int			b;

	for (i = 0; i < len; i++)
	{
		crc ^= (uint16) ((unsigned char) buf[i]) << 8;
		for (b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? (uint16) ((crc << 1) ^ 0x1021) : (uint16) (crc << 1);
	}
	return crc;
}

/*
 * The slot of a key: of its hash tag, the part between the first "{" and
 * the first "}" after it when that part is not empty, else of the whole
 * key.
 */
uint16
polyglot_redis_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open)
	{
		size_t		rest = len - (open + 1 - key);
		const char *close = memchr(open + 1, '}', rest);

		if (close && close > open + 1)
			return crc16(open + 1, close - open - 1) & (CLUSTER_SLOTS - 1);
	}
	return crc16(key, len) & (CLUSTER_SLOTS - 1);
}

static bool
is_command(const ClusterCmd *c, const char *name)
{
	return pg_strcasecmp(c->argv[0], name) == 0;
}

/* The slot of a command's key, or -1 for a command without one */
static int
command_slot(ClusterCmd *c)
{
	static const char *const keyless[] = {
		"MULTI", "EXEC", "DISCARD", "WAIT", "PING", "INFO", "DBSIZE", "SCAN",
		"ASKING", "CLUSTER", "ROLE", "AUTH", "SELECT", NULL
	};
	const char *const *k;

	for (k = keyless; *k; k++)
		if (is_command(c, *k))
			return -1;
	if (is_command(c, "EVAL") || is_command(c, "EVALSHA"))
	{
		if (c->argc >= 4 && atoi(c->argv[2]) > 0)
			return polyglot_redis_key_slot(c->argv[3], c->argvlen[3]);
		return -1;
	}
	if (c->argc < 2)
		return -1;
	return polyglot_redis_key_slot(c->argv[1], c->argvlen[1]);
}

/* ---------------------------------------------------------------- nodes */

/* The node at host:port, added when new */
static int
node_at(RedisCluster *cl, RedisConn *conn, const char *host, int port)
{
	ClusterNode *n;
	int			i;

	for (i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i]->port == port && pg_strcasecmp(cl->nodes[i]->host, host) == 0)
			return i;
	if (cl->nnodes == cl->nodes_cap)
	{
		cl->nodes_cap *= 2;
		cl->nodes = repalloc(cl->nodes, sizeof(ClusterNode *) * cl->nodes_cap);
	}
	n = MemoryContextAllocZero(cl->cxt, sizeof(ClusterNode));
	strlcpy(n->host, host, sizeof(n->host));
	n->port = port;
	strlcpy(n->conn.servername, conn->servername, sizeof(n->conn.servername));
	snprintf(n->conn.endpoint, sizeof(n->conn.endpoint), "%s:%d, a node of the cluster",
			 host, port);
	n->conn.io_timeout_ms = conn->io_timeout_ms;
	n->owed_cap = 16;
	n->owed = MemoryContextAlloc(cl->cxt, sizeof(Owed) * n->owed_cap);
	cl->nodes[cl->nnodes] = n;
	return cl->nnodes++;
}

/* The node's connection, connected */
static RedisConn *
node_conn(RedisCluster *cl, int i)
{
	ClusterNode *n = cl->nodes[i];

	if (n->conn.base.conn == NULL)
	{
		RedisConnOptions opts = cl->opts;

		opts.host = n->host;
		opts.port = n->port;
		opts.db = 0;
		opts.cluster = NULL;
		opts.sentinels = NULL;
		polyglot_redis_node_connect(&n->conn, &opts);
	}
	return &n->conn;
}

/* Appends a command to a node and notes the reply it owes */
static void
node_send(RedisCluster *cl, int i, int argc, const char **argv, const size_t *argvlen,
		  int cmd, OwedKind kind)
{
	ClusterNode *n = cl->nodes[i];
	RedisConn  *c = node_conn(cl, i);

	if (n->owed_head + n->nowed == n->owed_cap)
	{
		n->owed_cap *= 2;
		n->owed = repalloc(n->owed, sizeof(Owed) * n->owed_cap);
	}
	polyglot_redis_node_append(c, argc, argv, argvlen);
	n->owed[n->owed_head + n->nowed].cmd = cmd;
	n->owed[n->owed_head + n->nowed].kind = kind;
	n->nowed++;
	n->unflushed = true;
}

static void
send_command(RedisCluster *cl, int node, int cmd, OwedKind kind)
{
	ClusterCmd *c = &cl->cmds[cmd];

	node_send(cl, node, c->argc, (const char **) c->argv, c->argvlen, cmd, kind);
	if (kind == OWED_COMMAND)
	{
		c->owed++;
		c->node = node;
		c->sent = true;
	}
}

static void
flush_nodes(RedisCluster *cl, const char *what)
{
	int			i;

	for (i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i]->unflushed)
		{
			cl->nodes[i]->unflushed = false;
			polyglot_redis_node_flush(&cl->nodes[i]->conn, what);
		}
}

/* Reads the next reply a node owes, into the command that owes it */
static void
read_one(RedisCluster *cl, int i, const char *what)
{
	ClusterNode *n = cl->nodes[i];
	Owed		o;
	redisReply *reply;
	ClusterCmd *c;

	if (n->nowed == 0)
		elog(ERROR, "pg_polyglot: Redis Cluster node %s:%d owes no reply", n->host, n->port);
	o = n->owed[n->owed_head];
	reply = polyglot_redis_node_reply(&n->conn, what);
	n->owed_head++;
	n->nowed--;
	if (n->nowed == 0)
		n->owed_head = 0;
	c = &cl->cmds[o.cmd];
	switch (o.kind)
	{
		case OWED_COMMAND:
			if (c->reply)
				freeReplyObject(c->reply);
			c->reply = reply;
			c->owed--;
			break;
		case OWED_ASKING:
			freeReplyObject(reply);
			break;
		case OWED_WAIT:
			if (reply->type == REDIS_REPLY_ERROR)
			{
				/* an error wins over any count */
				if (c->wait_reply)
					freeReplyObject(c->wait_reply);
				c->wait_reply = reply;
				c->wait_min = -1;
			}
			else if (c->wait_reply == NULL)
			{
				c->wait_reply = reply;
				c->wait_min = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
			}
			else
			{
				if (c->wait_min >= 0)
					c->wait_min = Min(c->wait_min,
									  reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0);
				freeReplyObject(reply);
			}
			break;
	}
}

/* Reads what node i owes until command cmd's reply is in */
static void
read_command(RedisCluster *cl, int cmd, const char *what)
{
	while (cl->cmds[cmd].owed > 0)
		read_one(cl, cl->cmds[cmd].node, what);
}

/* Does node i owe a reply to WAIT command cmd? */
static bool
owes_wait(ClusterNode *n, int cmd)
{
	int			k;

	for (k = n->owed_head; k < n->owed_head + n->nowed; k++)
		if (n->owed[k].cmd == cmd && n->owed[k].kind == OWED_WAIT)
			return true;
	return false;
}

/* ---------------------------------------------------------------- the map */

/*
 * Reads the slot map from a node (CLUSTER SLOTS).  Returns false with the
 * reason in err when the node cannot tell; ereports only on a cancel.
 */
static bool
load_slots_from(RedisCluster *cl, RedisConn *conn, int i, char *err, size_t errlen)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = false;
	const char *argv[2] = {"CLUSTER", "SLOTS"};

	PG_TRY();
	{
		redisReply *reply;
		RedisConn  *c = node_conn(cl, i);
		int16		map[CLUSTER_SLOTS];
		size_t		r;
		int			s;

		polyglot_redis_node_append(c, 2, argv, NULL);
		polyglot_redis_node_flush(c, "CLUSTER SLOTS");
		reply = polyglot_redis_node_reply(c, "CLUSTER SLOTS");
		for (s = 0; s < CLUSTER_SLOTS; s++)
			map[s] = -1;
		if (reply->type == REDIS_REPLY_ERROR)
			snprintf(err, errlen, "%s:%d: %s", cl->nodes[i]->host, cl->nodes[i]->port,
					 reply->str ? reply->str : "error");
		else if (reply->type != REDIS_REPLY_ARRAY)
			snprintf(err, errlen, "%s:%d: CLUSTER SLOTS answered a reply of type %d",
					 cl->nodes[i]->host, cl->nodes[i]->port, reply->type);
		else
		{
			ok = true;
			for (r = 0; r < reply->elements && ok; r++)
			{
				redisReply *e = reply->element[r];
				redisReply *m;
				const char *host;
				int			node;

				if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
					e->element[0]->type != REDIS_REPLY_INTEGER ||
					e->element[1]->type != REDIS_REPLY_INTEGER ||
					e->element[2]->type != REDIS_REPLY_ARRAY ||
					e->element[2]->elements < 2 ||
					e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
					e->element[2]->element[1]->type != REDIS_REPLY_INTEGER ||
					e->element[0]->integer < 0 || e->element[1]->integer >= CLUSTER_SLOTS ||
					e->element[0]->integer > e->element[1]->integer ||
					e->element[2]->element[1]->integer < 1 ||
					e->element[2]->element[1]->integer > 65535)
				{
					snprintf(err, errlen, "%s:%d: CLUSTER SLOTS answered an entry of an unknown shape",
							 cl->nodes[i]->host, cl->nodes[i]->port);
					ok = false;
					break;
				}
				m = e->element[2];
				/* an empty or unknown host: the node's own */
				host = (m->element[0]->len == 0 || strcmp(m->element[0]->str, "?") == 0) ?
					cl->nodes[i]->host : m->element[0]->str;
				node = node_at(cl, conn, host, (int) m->element[1]->integer);
				for (s = (int) e->element[0]->integer; s <= (int) e->element[1]->integer; s++)
					map[s] = (int16) node;
			}
		}
		freeReplyObject(reply);
		if (ok)
		{
			memcpy(cl->slot_node, map, sizeof(map));
			cl->epoch++;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		FlushErrorState();
		snprintf(err, errlen, "%s:%d: %s%s%s", cl->nodes[i]->host, cl->nodes[i]->port,
				 edata->message, edata->detail ? ": " : "", edata->detail ? edata->detail : "");
		/* (the reasons are joined and end with a period of their own) */
		if (strlen(err) > 0 && err[strlen(err) - 1] == '.')
			err[strlen(err) - 1] = '\0';
		FreeErrorData(edata);
		/* the node's connection, if any, is in no known state */
		polyglot_redis_discard_connection(&cl->nodes[i]->conn);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Reads the slot map from the first node that tells: the known nodes, then
 * the seed nodes.  Ereports when none does.
 */
static void
load_slots(RedisCluster *cl, RedisConn *conn)
{
	StringInfoData reasons;
	int			known = cl->nnodes;
	int			i;

	initStringInfo(&reasons);
	for (i = 0; i < known; i++)
	{
		char		err[512];

		if (load_slots_from(cl, conn, i, err, sizeof(err)))
			return;
		appendStringInfo(&reasons, "%s%s", reasons.len ? "; " : "", err);
	}
	for (i = 0; i < cl->nseeds; i++)
	{
		char		err[512];
		int			node = node_at(cl, conn, cl->seed_hosts[i], cl->seed_ports[i]);

		if (node < known)
			continue;			/* asked already */
		if (load_slots_from(cl, conn, node, err, sizeof(err)))
			return;
		appendStringInfo(&reasons, "%s%s", reasons.len ? "; " : "", err);
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not read the slot map of Redis Cluster server \"%s\"", conn->servername),
			 errdetail_internal("No node answered CLUSTER SLOTS: %s.", reasons.data),
			 errhint("Check option \"cluster\": its nodes must be nodes of a Redis Cluster.")));
}

/* ---------------------------------------------------------------- connect, free */

/*
 * A cluster connection for conn (a cache entry of the cluster cache): its
 * seed nodes and options, and its slot map, read now.
 */
RedisCluster *
polyglot_redis_cluster_connect(RedisConn *conn, const RedisConnOptions *opts)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_polyglot Redis Cluster",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RedisCluster *cl = palloc0(sizeof(RedisCluster));
	char	   *bad;
	int			s;

	cl->cxt = cxt;
	cl->pipe_cxt = AllocSetContextCreate(cxt, "pg_polyglot Redis Cluster pipeline",
										 ALLOCSET_DEFAULT_SIZES);
	cl->opts = *opts;
	cl->opts.common.user = opts->common.user ? pstrdup(opts->common.user) : NULL;
	cl->opts.common.password = opts->common.password ? pstrdup(opts->common.password) : NULL;
	cl->opts.cluster = pstrdup(opts->cluster);
	cl->opts.sentinels = cl->opts.master_name = NULL;
	cl->opts.sentinel_user = cl->opts.sentinel_password = NULL;
	cl->nseeds = polyglot_redis_parse_addresses(cl->opts.cluster, &cl->seed_hosts,
												&cl->seed_ports, &bad);
	cl->nodes_cap = 8;
	cl->nodes = palloc(sizeof(ClusterNode *) * cl->nodes_cap);
	for (s = 0; s < CLUSTER_SLOTS; s++)
		cl->slot_node[s] = -1;
	cl->cmds_cap = 0;
	cl->open_unit = -1;
	MemoryContextSwitchTo(old);

	conn->base.conn = cl;
	PG_TRY();
	{
		if (cl->nseeds <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("invalid option \"cluster\" of Redis server \"%s\"", conn->servername)));
		load_slots(cl, conn);
	}
	PG_CATCH();
	{
		polyglot_redis_discard_connection(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return cl;
}

/* Frees the pipeline's unread replies */
static void
free_pipeline_replies(RedisCluster *cl)
{
	int			i;

	for (i = 0; i < cl->ncmds; i++)
	{
		if (cl->cmds[i].reply)
			freeReplyObject(cl->cmds[i].reply);
		if (cl->cmds[i].wait_reply)
			freeReplyObject(cl->cmds[i].wait_reply);
		cl->cmds[i].reply = NULL;
		cl->cmds[i].wait_reply = NULL;
	}
}

/* The cluster cache's disconnect: every node's connection and reply.  Never ereports. */
void
polyglot_redis_cluster_free(void *handle)
{
	RedisCluster *cl = (RedisCluster *) handle;
	int			i;

	free_pipeline_replies(cl);
	for (i = 0; i < cl->nnodes; i++)
		if (cl->nodes[i]->conn.base.conn)
		{
			polyglot_redis_free_context((redisContext *) cl->nodes[i]->conn.base.conn);
			cl->nodes[i]->conn.base.conn = NULL;
		}
	MemoryContextDelete(cl->cxt);
}

/*
 * Runs an operation on the cluster; any error drops the whole cluster
 * connection (its entry's, or the pinned one) first.
 */
#define CLUSTER_GUARD(conn, pin, body) \
	do { \
		PG_TRY(); \
		{ \
			body; \
		} \
		PG_CATCH(); \
		{ \
			if (pin) \
				polyglot_conncache_discard_pinned(pin); \
			else \
				polyglot_redis_discard_connection(conn); \
			PG_RE_THROW(); \
		} \
		PG_END_TRY(); \
	} while (0)

/* ---------------------------------------------------------------- the pipeline */

/* Starts a new pipeline once the last one's replies were all handed out */
static void
pipeline_start(RedisCluster *cl, RedisConn *conn)
{
	int			i;

	if (cl->ncmds > 0 && cl->next < cl->ncmds)
		return;
	free_pipeline_replies(cl);
	MemoryContextReset(cl->pipe_cxt);
	cl->cmds = NULL;
	cl->ncmds = cl->cmds_cap = cl->next = cl->first_unsent = 0;
	cl->open_unit = -1;
	for (i = 0; i < cl->nnodes; i++)
	{
		cl->nodes[i]->written = false;
		cl->nodes[i]->owed_head = cl->nodes[i]->nowed = 0;
	}
	if (cl->refresh_due)
	{
		cl->refresh_due = false;
		load_slots(cl, conn);
	}
}

static void
cluster_append(RedisCluster *cl, RedisConn *conn, int argc, const char **argv,
			   const size_t *argvlen)
{
	MemoryContext old;
	ClusterCmd *c;
	int			i;

	pipeline_start(cl, conn);
	old = MemoryContextSwitchTo(cl->pipe_cxt);
	if (cl->ncmds == cl->cmds_cap)
	{
		cl->cmds_cap = Max(cl->cmds_cap * 2, 64);
		cl->cmds = cl->cmds ? repalloc(cl->cmds, sizeof(ClusterCmd) * cl->cmds_cap) :
			palloc(sizeof(ClusterCmd) * cl->cmds_cap);
	}
	c = &cl->cmds[cl->ncmds];
	memset(c, 0, sizeof(*c));
	c->argc = argc;
	c->argv = palloc(sizeof(char *) * argc);
	c->argvlen = palloc(sizeof(size_t) * argc);
	for (i = 0; i < argc; i++)
	{
		size_t		len = argvlen ? argvlen[i] : strlen(argv[i]);

		c->argv[i] = palloc(len + 1);
		memcpy(c->argv[i], argv[i], len);
		c->argv[i][len] = '\0';
		c->argvlen[i] = len;
	}
	MemoryContextSwitchTo(old);
	c->slot = command_slot(c);
	c->node = -1;
	c->unit = -1;
	c->unit_end = -1;
	c->is_wait = is_command(c, "WAIT");
	if (is_command(c, "MULTI"))
		cl->open_unit = cl->ncmds;
	if (cl->open_unit >= 0)
	{
		c->unit = cl->open_unit;
		if (is_command(c, "EXEC") || is_command(c, "DISCARD"))
		{
			cl->cmds[cl->open_unit].unit_end = cl->ncmds;
			cl->open_unit = -1;
		}
	}
	cl->ncmds++;
}

/* The node that serves a slot */
static int
slot_node(RedisCluster *cl, RedisConn *conn, int slot)
{
	int			node = cl->slot_node[slot];

	if (node < 0)
	{
		/* the map may be old: once more */
		load_slots(cl, conn);
		node = cl->slot_node[slot];
	}
	if (node < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("no node of Redis Cluster server \"%s\" serves slot %d",
						conn->servername, slot),
				 errdetail("The cluster's slot map leaves the slot unassigned (CLUSTERDOWN).")));
	return node;
}

/* The node of commands without a key: the first that serves a slot */
static int
any_node(RedisCluster *cl, RedisConn *conn)
{
	return slot_node(cl, conn, 0);
}

/* Sends the commands appended since the last send, one pipeline per node */
static void
send_pending(RedisCluster *cl, RedisConn *conn, const char *what)
{
	int			i;

	for (i = cl->first_unsent; i < cl->ncmds; i++)
	{
		ClusterCmd *c = &cl->cmds[i];
		int			node;

		if (c->is_wait)
		{
			int			n;
			bool		any = false;

			c->wait_min = -1;
			for (n = 0; n < cl->nnodes; n++)
				if (cl->nodes[n]->written)
				{
					node_send(cl, n, c->argc, (const char **) c->argv, c->argvlen, i, OWED_WAIT);
					cl->nodes[n]->written = false;
					any = true;
				}
			if (!any)
				node_send(cl, any_node(cl, conn), c->argc, (const char **) c->argv,
						  c->argvlen, i, OWED_WAIT);
			c->sent = true;
			continue;
		}
		if (c->unit >= 0 && c->unit != i)
			node = cl->cmds[c->unit].node;	/* the unit's, chosen at its MULTI */
		else if (c->unit == i)
		{
			int			k;
			int			end = c->unit_end >= 0 ? c->unit_end : cl->ncmds - 1;

			node = -1;
			for (k = i + 1; k <= end && node < 0; k++)
				if (cl->cmds[k].slot >= 0)
					node = slot_node(cl, conn, cl->cmds[k].slot);
			if (node < 0)
				node = any_node(cl, conn);
		}
		else if (c->slot >= 0)
			node = slot_node(cl, conn, c->slot);
		else
			node = any_node(cl, conn);
		send_command(cl, node, i, OWED_COMMAND);
		cl->nodes[node]->written = true;
	}
	cl->first_unsent = cl->ncmds;
	flush_nodes(cl, what);
}

/*
 * A redirection reply: -MOVED slot host:port or -ASK slot host:port.
 * Fills its parts and returns true.
 */
static bool
redirection(redisReply *r, bool *ask, int *slot, char *host, size_t hostlen, int *port)
{
	const char *p;
	const char *colon;
	char	   *end;
	long		v;

	if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL)
		return false;
	if (strncmp(r->str, "MOVED ", 6) == 0)
		*ask = false;
	else if (strncmp(r->str, "ASK ", 4) == 0)
		*ask = true;
	else
		return false;
	p = r->str + (*ask ? 4 : 6);
	v = strtol(p, &end, 10);
	if (end == p || *end != ' ' || v < 0 || v >= CLUSTER_SLOTS)
		return false;
	*slot = (int) v;
	p = end + 1;
	colon = strrchr(p, ':');
	if (colon == NULL || (size_t) (colon - p) >= hostlen)
		return false;
	v = strtol(colon + 1, &end, 10);
	if (*end != '\0' || v < 1 || v > 65535)
		return false;
	memcpy(host, p, colon - p);
	host[colon - p] = '\0';
	/* "MOVED 1 :6380": the host of the node that answered */
	*port = (int) v;
	return true;
}

/* Is there a WAIT after command i in the pipeline?  Its index, or -1. */
static int
wait_after(RedisCluster *cl, int i)
{
	int			k;

	for (k = i + 1; k < cl->ncmds; k++)
		if (cl->cmds[k].is_wait)
			return k;
	return -1;
}

/*
 * Sends commands first..last again to the node a redirection names (ASK:
 * after ASKING, and without changing the map; MOVED: the node serves the
 * slot from now on), with a WAIT of their own when the pipeline ends with
 * one.
 */
static void
redirect(RedisCluster *cl, RedisConn *conn, int first, int last, bool ask, int slot,
		 const char *host, int port, const char *what)
{
	int			from = cl->cmds[first].node;
	int			target;
	int			w = wait_after(cl, last);
	int			k;

	if (host[0] == '\0')
		host = cl->nodes[from]->host;
	target = node_at(cl, conn, host, port);
	if (!ask)
	{
		cl->slot_node[slot] = (int16) target;
		cl->epoch++;
		cl->refresh_due = true;
	}
	if (ask)
	{
		const char *asking[1] = {"ASKING"};

		node_send(cl, target, 1, asking, NULL, first, OWED_ASKING);
	}
	for (k = first; k <= last; k++)
	{
		if (cl->cmds[k].reply)
		{
			freeReplyObject(cl->cmds[k].reply);
			cl->cmds[k].reply = NULL;
		}
		send_command(cl, target, k, OWED_COMMAND);
	}
	if (w >= 0 && cl->cmds[w].sent)
		node_send(cl, target, cl->cmds[w].argc, (const char **) cl->cmds[w].argv,
				  cl->cmds[w].argvlen, w, OWED_WAIT);
	flush_nodes(cl, what);
}

/* Reads command i's reply, following redirections */
static void
resolve_command(RedisCluster *cl, RedisConn *conn, int i, const char *what)
{
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		bool		ask;
		int			slot;
		int			port;
		char		host[256];

		read_command(cl, i, what);
		if (attempt >= MAX_REDIRECTS ||
			!redirection(cl->cmds[i].reply, &ask, &slot, host, sizeof(host), &port))
			return;
		redirect(cl, conn, i, i, ask, slot, host, port, what);
	}
}

/* Reads the replies of the unit MULTI m ... EXEC, sending it all again after a redirection */
static void
resolve_unit(RedisCluster *cl, RedisConn *conn, int m, const char *what)
{
	int			end = cl->cmds[m].unit_end >= 0 ? cl->cmds[m].unit_end : cl->ncmds - 1;
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		bool		ask = false;
		int			slot = 0;
		int			port = 0;
		char		host[256];
		bool		redirected = false;
		int			k;

		for (k = m; k <= end; k++)
			read_command(cl, k, what);
		for (k = m + 1; k < end && !redirected; k++)
			redirected = redirection(cl->cmds[k].reply, &ask, &slot, host, sizeof(host), &port);
		if (!redirected || attempt >= MAX_REDIRECTS)
			return;
		redirect(cl, conn, m, end, ask, slot, host, port, what);
	}
}

/* Reads a WAIT's replies from every node it went to: the least count */
static void
resolve_wait(RedisCluster *cl, int w, const char *what)
{
	int			n;

	for (n = 0; n < cl->nnodes; n++)
		while (owes_wait(cl->nodes[n], w))
			read_one(cl, n, what);
	if (cl->cmds[w].wait_reply && cl->cmds[w].wait_reply->type == REDIS_REPLY_INTEGER)
		cl->cmds[w].wait_reply->integer = cl->cmds[w].wait_min;
	cl->cmds[w].reply = cl->cmds[w].wait_reply;
	cl->cmds[w].wait_reply = NULL;
}

static redisReply *
cluster_reply(RedisCluster *cl, RedisConn *conn, const char *what)
{
	int			i = cl->next;
	ClusterCmd *c;
	redisReply *reply;

	if (i >= cl->ncmds)
		elog(ERROR, "pg_polyglot: no reply is owed by Redis Cluster server \"%s\"",
			 conn->servername);
	if (cl->first_unsent < cl->ncmds)
		send_pending(cl, conn, what);
	c = &cl->cmds[i];
	if (c->reply == NULL)
	{
		if (c->is_wait)
			resolve_wait(cl, i, what);
		else if (c->unit == i)
			resolve_unit(cl, conn, i, what);
		else if (c->unit < 0)
			resolve_command(cl, conn, i, what);
		else
			read_command(cl, i, what);	/* in a unit resolved already */
	}
	reply = c->reply;
	c->reply = NULL;
	cl->next++;
	if (reply == NULL)
		elog(ERROR, "pg_polyglot: Redis Cluster server \"%s\" gave no reply to a command",
			 conn->servername);
	return reply;
}

/* ---------------------------------------------------------------- the callers' side */

void
polyglot_redis_cluster_append(RedisConn *conn, int argc, const char **argv,
							  const size_t *argvlen)
{
	RedisCluster *cl = cluster_of(conn, (PolyglotConnPin *) NULL);

	CLUSTER_GUARD(conn, (PolyglotConnPin *) NULL, cluster_append(cl, conn, argc, argv, argvlen));
}

redisReply *
polyglot_redis_cluster_reply(RedisConn *conn, const PolyglotConnPin *pin, const char *what)
{
	RedisCluster *cl = cluster_of(conn, pin);
	redisReply *volatile reply = NULL;

	CLUSTER_GUARD(conn, pin, reply = cluster_reply(cl, conn, what));
	return reply;
}

void
polyglot_redis_cluster_flush(RedisConn *conn, const PolyglotConnPin *pin, const char *what)
{
	RedisCluster *cl = cluster_of(conn, pin);

	CLUSTER_GUARD(conn, pin, send_pending(cl, conn, what));
}

/* The k-th primary, in slot order (the nodes that serve a slot), or -1 */
static int
primary(RedisCluster *cl, int k)
{
	bool	   *seen = palloc0(sizeof(bool) * Max(cl->nnodes, 1));
	int			found = 0;
	int			result = -1;
	int			s;

	for (s = 0; s < CLUSTER_SLOTS && result < 0; s++)
	{
		int			n = cl->slot_node[s];

		if (n < 0 || seen[n])
			continue;
		seen[n] = true;
		if (found++ == k)
			result = n;
	}
	pfree(seen);
	return result;
}

int
polyglot_redis_cluster_nodes(RedisCluster *cl)
{
	int			k = 0;

	while (primary(cl, k) >= 0)
		k++;
	return k;
}

/*
 * The connection of the k-th primary (polyglot_redis_node_count() of them),
 * for a command of its own (SCAN, DBSIZE), outside any pipeline.
 */
RedisConn *
polyglot_redis_cluster_node(RedisConn *conn, int k)
{
	RedisCluster *cl = cluster_of(conn, (PolyglotConnPin *) NULL);
	RedisConn  *volatile node = NULL;

	PG_TRY();
	{
		int			n = primary(cl, k);

		if (cl->next < cl->ncmds)
			elog(ERROR, "pg_polyglot: a command for one node of Redis Cluster server \"%s\" in the middle of a pipeline",
				 conn->servername);
		if (n < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Redis Cluster server \"%s\" has no primary number %d",
							conn->servername, k + 1),
					 errdetail("The slot map changed while the statement ran.")));
		node = node_conn(cl, n);
	}
	PG_CATCH();
	{
		polyglot_redis_discard_connection(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return node;
}

uint64
polyglot_redis_cluster_epoch(RedisCluster *cl)
{
	return cl->epoch;
}
