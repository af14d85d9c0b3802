/*
 * bench/redis_cluster_raw.c - the baseline of bench/redis_cluster.sh: a
 * lookup of N keys on a Redis Cluster done directly with hiredis, no
 * PostgreSQL, the way pg_polyglot does it: the slot map read once
 * (CLUSTER SLOTS), each key's GET appended to the connection of the node
 * that serves its slot, every node's pipeline written, then every reply
 * read.
 *
 *   redis_cluster_raw HOST PORT PREFIX N RUNS
 *
 * Prints "<median ms> <rows>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis.h>

#define SLOTS 16384
#define MAX_NODES 64

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* Redis Cluster's key hash: CRC16 (XMODEM) of the key or of its hash tag */
static unsigned
slot_of(const char *key)
{
	size_t		len = strlen(key);
	const char *open = strchr(key, '{');
	unsigned	crc = 0;
	size_t		i;

	if (open)
	{
		const char *close = strchr(open + 1, '}');

		if (close && close > open + 1)
		{
			key = open + 1;
			len = close - open - 1;
		}
	}
	for (i = 0; i < len; i++)
	{
		int			b;

		crc ^= (unsigned) (unsigned char) key[i] << 8;
		for (b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
	}
	return crc & (SLOTS - 1);
}

int
main(int argc, char **argv)
{
	const char *host;
	int			port, n, runs, i, r;
	const char *prefix;
	redisContext *seed;
	redisReply *map;
	redisContext *nodes[MAX_NODES];
	char		node_host[MAX_NODES][64];
	int			node_port[MAX_NODES];
	int			nnodes = 0;
	static int	slot_node[SLOTS];
	int		   *key_node;
	char	  **keys;
	double	   *times;
	long		rows = 0;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s HOST PORT PREFIX N RUNS\n", argv[0]);
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	prefix = argv[3];
	n = atoi(argv[4]);
	runs = atoi(argv[5]);

	seed = redisConnect(host, port);
	if (seed == NULL || seed->err)
	{
		fprintf(stderr, "cannot connect to %s:%d\n", host, port);
		return 1;
	}
	map = redisCommand(seed, "CLUSTER SLOTS");
	if (map == NULL || map->type != REDIS_REPLY_ARRAY)
	{
		fprintf(stderr, "CLUSTER SLOTS failed\n");
		return 1;
	}
	for (i = 0; i < (int) map->elements; i++)
	{
		redisReply *e = map->element[i];
		const char *h = e->element[2]->element[0]->str;
		int			p = (int) e->element[2]->element[1]->integer;
		int			k;
		int			s;

		for (k = 0; k < nnodes; k++)
			if (node_port[k] == p && strcmp(node_host[k], h) == 0)
				break;
		if (k == nnodes)
		{
			snprintf(node_host[k], sizeof(node_host[k]), "%s", h);
			node_port[k] = p;
			nodes[k] = redisConnect(h, p);
			if (nodes[k] == NULL || nodes[k]->err)
			{
				fprintf(stderr, "cannot connect to %s:%d\n", h, p);
				return 1;
			}
			nnodes++;
		}
		for (s = (int) e->element[0]->integer; s <= (int) e->element[1]->integer; s++)
			slot_node[s] = k;
	}
	freeReplyObject(map);

	keys = malloc(sizeof(char *) * n);
	key_node = malloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
	{
		keys[i] = malloc(strlen(prefix) + 16);
		sprintf(keys[i], "%s%d", prefix, i + 1);
		key_node[i] = slot_node[slot_of(keys[i])];
	}
	times = malloc(sizeof(double) * runs);
	for (r = 0; r < runs; r++)
	{
		double		t0 = now_ms();
		int			k;

		rows = 0;
		/* the slot of each key is part of the work: computed again each run */
		for (i = 0; i < n; i++)
		{
			key_node[i] = slot_node[slot_of(keys[i])];
			redisAppendCommand(nodes[key_node[i]], "GET %s", keys[i]);
		}
		/* every node's pipeline out before any reply is read */
		for (k = 0; k < nnodes; k++)
		{
			int			done = 0;

			while (!done)
				if (redisBufferWrite(nodes[k], &done) != REDIS_OK)
				{
					fprintf(stderr, "write failed\n");
					return 1;
				}
		}
		for (i = 0; i < n; i++)
		{
			redisReply *reply;

			if (redisGetReply(nodes[key_node[i]], (void **) &reply) != REDIS_OK)
			{
				fprintf(stderr, "read failed\n");
				return 1;
			}
			if (reply->type == REDIS_REPLY_STRING)
				rows++;
			freeReplyObject(reply);
		}
		times[r] = now_ms() - t0;
	}
	qsort(times, runs, sizeof(double), cmp);
	printf("%.3f %ld\n", times[runs / 2], rows);
	return 0;
}
