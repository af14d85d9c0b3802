/*
 * bench/mongo_raw_find.c - the baseline of bench/scan_mongo.sh: a find
 * through libmongoc alone, iterating every returned document (each one's
 * fields visited, nothing converted), timed on a monotonic clock.
 *
 * Usage: mongo_raw_find URI DATABASE COLLECTION FILTER-JSON REPEAT [OPTS-JSON]
 *          a find with that filter, and the options (a projection, say)
 *        mongo_raw_find URI DATABASE COLLECTION --pipeline PIPELINE-JSON REPEAT
 *          an aggregate with that pipeline
 * Prints the median of REPEAT runs: "<documents> <milliseconds>".
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll;
	bson_t	   *filter;
	bson_t	   *opts = NULL;
	bson_error_t error;
	int			pipeline = 0;
	double	   *ms;
	long		docs = 0;
	int			repeat,
				r;
	const char *json = argc > 4 ? argv[4] : NULL;

	if (argc == 7 && strcmp(argv[4], "--pipeline") == 0)
	{
		/* the pipeline and the repeat count come one argument later */
		pipeline = 1;
		json = argv[5];
		argv[5] = argv[6];
		argc = 6;
	}
	if (argc != 6 && argc != 7)
	{
		fprintf(stderr, "usage: %s URI DATABASE COLLECTION FILTER-JSON REPEAT [OPTS-JSON]\n"
				"       %s URI DATABASE COLLECTION --pipeline PIPELINE-JSON REPEAT\n",
				argv[0], argv[0]);
		return 2;
	}
	repeat = atoi(argv[5]);
	if (repeat < 1)
		repeat = 1;
	ms = calloc(repeat, sizeof(double));
	mongoc_init();
	client = mongoc_client_new(argv[1]);
	if (client == NULL)
		return 1;
	coll = mongoc_client_get_collection(client, argv[2], argv[3]);
	filter = bson_new_from_json((const uint8_t *) json, -1, &error);
	if (filter == NULL)
	{
		fprintf(stderr, "filter: %s\n", error.message);
		return 1;
	}
	if (argc == 7 && (opts = bson_new_from_json((const uint8_t *) argv[6], -1, &error)) == NULL)
	{
		fprintf(stderr, "options: %s\n", error.message);
		return 1;
	}
	for (r = 0; r < repeat; r++)
	{
		struct timespec t0,
					t1;
		mongoc_cursor_t *cursor;
		const bson_t *doc;
		long		fields = 0;

		docs = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (pipeline)
			cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, filter, NULL, NULL);
		else
			cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
		while (mongoc_cursor_next(cursor, &doc))
		{
			bson_iter_t iter;

			if (bson_iter_init(&iter, doc))
				while (bson_iter_next(&iter))
					fields++;
			docs++;
		}
		if (mongoc_cursor_error(cursor, &error))
		{
			fprintf(stderr, "find: %s\n", error.message);
			return 1;
		}
		mongoc_cursor_destroy(cursor);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms[r] = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (fields < docs)
			fprintf(stderr, "empty documents?\n");
	}
	qsort(ms, repeat, sizeof(double), cmp_double);
	printf("%ld %.3f\n", docs, ms[repeat / 2]);
	bson_destroy(filter);
	if (opts)
		bson_destroy(opts);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	mongoc_cleanup();
	return 0;
}
