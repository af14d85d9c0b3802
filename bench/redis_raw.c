/*
 * bench/redis_raw.c - the baseline of bench/scan_redis.sh: the same reads
 * done directly with hiredis, no PostgreSQL.
 *
 *   redis_raw PORT DB get PREFIX N RUNS    GET of keys PREFIX1..PREFIXN, all in
 *                                          one pipeline (one round trip)
 *   redis_raw PORT DB scan PREFIX COUNT RUNS
 *                                          SCAN MATCH PREFIX* COUNT COUNT TYPE
 *                                          string, the GETs of each page in one
 *                                          pipeline
 *   redis_raw PORT DB lookup PREFIX N RUNS GET of keys PREFIX1..PREFIXN, each
 *                                          in a round trip of its own
 *
 * Prints "<median ms> <rows>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis.h>

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

static long
pipeline_get(redisContext *c, char **keys, int n)
{
	long		rows = 0;
	int			i;

	for (i = 0; i < n; i++)
		redisAppendCommand(c, "GET %s", keys[i]);
	for (i = 0; i < n; i++)
	{
		redisReply *r;

		if (redisGetReply(c, (void **) &r) != REDIS_OK)
		{
			fprintf(stderr, "redis error: %s\n", c->errstr);
			exit(1);
		}
		if (r->type == REDIS_REPLY_STRING)
			rows++;
		freeReplyObject(r);
	}
	return rows;
}

int
main(int argc, char **argv)
{
	redisContext *c;
	redisReply *r;
	int			runs,
				run;
	double	   *ms;
	long		rows = 0;

	if (argc != 7)
	{
		fprintf(stderr, "usage: redis_raw PORT DB get|scan|lookup PREFIX N|COUNT RUNS\n");
		return 2;
	}
	c = redisConnect("127.0.0.1", atoi(argv[1]));
	if (c == NULL || c->err)
	{
		fprintf(stderr, "cannot connect\n");
		return 1;
	}
	r = redisCommand(c, "SELECT %s", argv[2]);
	freeReplyObject(r);
	runs = atoi(argv[6]);
	ms = calloc(runs, sizeof(double));
	for (run = 0; run < runs; run++)
	{
		double		t0 = now_ms();

		rows = 0;
		if (strcmp(argv[3], "get") == 0)
		{
			int			n = atoi(argv[5]);
			char	  **keys = malloc(sizeof(char *) * n);
			int			i;

			for (i = 0; i < n; i++)
			{
				keys[i] = malloc(strlen(argv[4]) + 16);
				sprintf(keys[i], "%s%d", argv[4], i + 1);
			}
			rows = pipeline_get(c, keys, n);
			for (i = 0; i < n; i++)
				free(keys[i]);
			free(keys);
		}
		else if (strcmp(argv[3], "lookup") == 0)
		{
			int			n = atoi(argv[5]);
			int			i;

			for (i = 0; i < n; i++)
			{
				char		key[256];

				snprintf(key, sizeof(key), "%s%d", argv[4], i + 1);
				r = redisCommand(c, "GET %s", key);
				if (r == NULL)
				{
					fprintf(stderr, "redis error: %s\n", c->errstr);
					return 1;
				}
				if (r->type == REDIS_REPLY_STRING)
					rows++;
				freeReplyObject(r);
			}
		}
		else
		{
			char		cursor[64] = "0";
			char		pattern[256];

			snprintf(pattern, sizeof(pattern), "%s*", argv[4]);
			do
			{
				char	  **keys;
				size_t		i;

				r = redisCommand(c, "SCAN %s MATCH %s COUNT %s TYPE string", cursor, pattern, argv[5]);
				if (r == NULL || r->type != REDIS_REPLY_ARRAY)
				{
					fprintf(stderr, "SCAN failed\n");
					return 1;
				}
				snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
				keys = malloc(sizeof(char *) * (r->element[1]->elements + 1));
				for (i = 0; i < r->element[1]->elements; i++)
					keys[i] = r->element[1]->element[i]->str;
				rows += pipeline_get(c, keys, (int) r->element[1]->elements);
				free(keys);
				freeReplyObject(r);
			} while (strcmp(cursor, "0") != 0);
		}
		ms[run] = now_ms() - t0;
	}
	qsort(ms, runs, sizeof(double), cmp);
	printf("%.2f %ld\n", ms[runs / 2], rows);
	redisFree(c);
	return 0;
}
