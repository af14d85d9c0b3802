/*-------------------------------------------------------------------------
 *
 * mongo.h
 *		Declarations shared by the MongoDB files: options, connections and
 *		error reporting.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_MONGO_H
#define POLYGLOT_MONGO_H

#include <mongoc/mongoc.h>

#include "foreign/fdwapi.h"
#include "foreign/foreign.h"

#include "pg_polyglot.h"
#include "common/conncache.h"

typedef struct MongoConnOptions
{
	PolyglotConnOptions common;
	const char *uri;
	const char *database;		/* default database, or NULL */
} MongoConnOptions;

/* in mongo_option.c */
extern void polyglot_mongo_get_options(ForeignServer *server, UserMapping *user,
							  MongoConnOptions *opts);

/* in mongo_connection.c */
typedef struct MongoConn
{
	PolyglotConnEntry base;		/* base.conn is the mongoc_client_t */
	char		servername[NAMEDATALEN];
	char		database[128];	/* server's default database, "" if none */
	bool		flavor_known;	/* buildInfo was read on this connection */
	bool		ferretdb;		/* the server is FerretDB */
	bool		has_decimal128; /* the server stores decimal128 */
	char		version[64];	/* from buildInfo */
} MongoConn;

#define mongo_client(c) ((mongoc_client_t *) (c)->base.conn)

extern void polyglot_mongo_ensure_initialized(void);
extern MongoConn *polyglot_mongo_get_connection(ForeignServer *server, UserMapping *user);
extern void polyglot_mongo_read_flavor(MongoConn *conn);
extern int	polyglot_mongo_bson_flags(const MongoConn *conn);
extern void polyglot_mongo_report_error(MongoConn *conn, const bson_error_t *error,
							   const char *what) pg_attribute_noreturn();
extern void polyglot_mongo_report_pinned_error(MongoConn *conn, const PolyglotConnPin *pin,
									  const bson_error_t *error,
									  const char *what) pg_attribute_noreturn();

/* in mongo_stream.c */
extern void polyglot_mongo_stream_setup(mongoc_client_t *client, const mongoc_uri_t *uri);

/* in mongo_bson.c */
#define POLYGLOT_BSON_NO_DECIMAL128	0x01	/* the server has no decimal128 */
#define POLYGLOT_BSON_NO_NAN		0x02	/* the server cannot take a NaN double */
extern bool polyglot_bson_append_datum(bson_t *doc, const char *key, int keylen,
									   Datum value, bool isnull, Oid typid, int flags,
									   char **error);

extern void polyglot_bson_append_eq(bson_t *doc, const char *key, int keylen,
									const bson_value_t *value);
extern void polyglot_bson_append_id_in(bson_t *filter, const bson_value_t *ids, int nids);

extern char *polyglot_bson_document_json(const bson_t *doc);
extern const char *polyglot_bson_type_name(bson_type_t type);
extern Datum polyglot_bson_to_datum(const bson_iter_t *iter, Oid typid, int32 typmod,
									bool *isnull);

/* in mongo_import.c */
extern List *polyglotMongoImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

#endif							/* POLYGLOT_MONGO_H */
