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

#include "foreign/foreign.h"

#include "pg_polyglot.h"
#include "common/conncache.h"

typedef struct MongoConnOptions
{
	PolyglotConnOptions common;
	const char *uri;
	const char *database;		/* default database, or NULL */
} MongoConnOptions;

/* mongo_option.c */
extern void mongo_get_options(ForeignServer *server, UserMapping *user,
							  MongoConnOptions *opts);

/* mongo_connection.c */
typedef struct MongoConn
{
	PolyglotConnEntry base;		/* base.conn is the mongoc_client_t */
	char		servername[NAMEDATALEN];
	char		database[128];	/* server's default database, "" if none */
} MongoConn;

#define mongo_client(conn) ((mongoc_client_t *) (conn)->base.conn)

extern void mongo_ensure_initialized(void);
extern MongoConn *mongo_get_connection(ForeignServer *server, UserMapping *user);
extern void mongo_report_error(MongoConn *conn, const bson_error_t *error,
							   const char *what) pg_attribute_noreturn();

#endif							/* POLYGLOT_MONGO_H */
