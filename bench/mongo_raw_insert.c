/*
 * bench/mongo_raw_insert.c - the baselines of bench/sync_mongo.sh: writes N
 * documents shaped like the synced rows straight through libmongoc, 1000 at
 * a time, and prints documents per second.
 *   insert   into an empty collection, insert_many of 1000
 *   rewrite  over the same documents already there, as pg_polyglot writes
 *            to FerretDB: deleteMany of the 1000 _ids, then insert_many
 *
 * Usage: mongo_raw_insert URI DATABASE COLLECTION N insert|rewrite
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
main(int argc, char **argv)
{
	mongoc_client_t *client;
	mongoc_collection_t *coll;
	bson_error_t error;
	struct timespec t0, t1;
	long		n, i, start;
	double		secs;

	int			rewrite;

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s URI DATABASE COLLECTION N insert|rewrite\n", argv[0]);
		return 2;
	}
	rewrite = strcmp(argv[5], "rewrite") == 0;
	n = atol(argv[4]);
	mongoc_init();
	client = mongoc_client_new(argv[1]);
	if (client == NULL)
		return 1;
	coll = mongoc_client_get_collection(client, argv[2], argv[3]);
	if (!rewrite)
		mongoc_collection_drop(coll, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (start = 1; start <= n; start += 1000)
	{
		bson_t	   *docs[1000];
		long		k = 0;

		for (i = start; i <= n && i < start + 1000; i++)
		{
			char		name[32];

			snprintf(name, sizeof(name), "product %ld", i);
			docs[k++] = BCON_NEW("_id", BCON_INT64(i), "id", BCON_INT64(i),
								 "name", BCON_UTF8(name), "price", BCON_DOUBLE(9.99),
								 "stock", BCON_INT32(11),
								 "updated", BCON_DATE_TIME((int64_t) 1732406400000));
		}
		if (rewrite)
		{
			bson_t		filter = BSON_INITIALIZER;
			bson_t		in,
						ids;
			char		key[16];

			bson_append_document_begin(&filter, "_id", 3, &in);
			bson_append_array_begin(&in, "$in", 3, &ids);
			for (i = start; i <= n && i < start + 1000; i++)
			{
				snprintf(key, sizeof(key), "%ld", i - start);
				bson_append_int64(&ids, key, -1, i);
			}
			bson_append_array_end(&in, &ids);
			bson_append_document_end(&filter, &in);
			if (!mongoc_collection_delete_many(coll, &filter, NULL, NULL, &error))
			{
				fprintf(stderr, "delete_many: %s\n", error.message);
				return 1;
			}
			bson_destroy(&filter);
		}
		if (!mongoc_collection_insert_many(coll, (const bson_t **) docs, k, NULL, NULL, &error))
		{
			fprintf(stderr, "insert_many: %s\n", error.message);
			return 1;
		}
		for (i = 0; i < k; i++)
			bson_destroy(docs[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.0f\n", n / secs);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	mongoc_cleanup();
	return 0;
}
