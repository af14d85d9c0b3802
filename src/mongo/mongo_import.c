/*-------------------------------------------------------------------------
 *
 * mongo_import.c
 *		IMPORT FOREIGN SCHEMA for the polyglot_mongo wrapper: a foreign table
 *		per collection of a MongoDB database, with columns inferred from a
 *		sample of its documents.
 *
 * MongoDB has no schema to read: a column's type is what the sampled
 * values of its field agree on, jsonb where they disagree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "pg_polyglot.h"
#include "mongo/mongo.h"

/* A field seen while sampling, and the column type it suggests */
typedef struct SampledField
{
	char	   *name;
	int			kinds;			/* bit per kind seen, below */
} SampledField;

#define KIND_INT32		0x001
#define KIND_INT64		0x002
#define KIND_DOUBLE		0x004
#define KIND_DECIMAL	0x008
#define KIND_BOOL		0x010
#define KIND_STRING		0x020
#define KIND_DATE		0x040
#define KIND_UUID		0x080
#define KIND_BINARY		0x100
#define KIND_OBJECTID	0x200
#define KIND_JSON		0x400	/* documents, arrays, anything else */

static int
bson_kind(bson_type_t type, const bson_iter_t *iter)
{
	switch (type)
	{
		case BSON_TYPE_INT32:
			return KIND_INT32;
		case BSON_TYPE_INT64:
			return KIND_INT64;
		case BSON_TYPE_DOUBLE:
			return KIND_DOUBLE;
		case BSON_TYPE_DECIMAL128:
			return KIND_DECIMAL;
		case BSON_TYPE_BOOL:
			return KIND_BOOL;
		case BSON_TYPE_UTF8:
			return KIND_STRING;
		case BSON_TYPE_DATE_TIME:
			return KIND_DATE;
		case BSON_TYPE_OID:
			return KIND_OBJECTID;
		case BSON_TYPE_BINARY:
			{
				bson_subtype_t subtype;
				uint32_t	len;
				const uint8_t *data;

				bson_iter_binary(iter, &subtype, &len, &data);
				return subtype == BSON_SUBTYPE_UUID && len == 16 ? KIND_UUID : KIND_BINARY;
			}
		case BSON_TYPE_NULL:
		case BSON_TYPE_UNDEFINED:
			return 0;
		default:
			return KIND_JSON;
	}
}

/* The column type for the kinds of values a field held in the sample */
static const char *
column_type(int kinds)
{
	if (kinds == 0)
		return "text";
	if ((kinds & ~(KIND_INT32)) == 0)
		return "integer";
	if ((kinds & ~(KIND_INT32 | KIND_INT64)) == 0)
		return "bigint";
	if ((kinds & ~(KIND_INT32 | KIND_INT64 | KIND_DOUBLE)) == 0)
		return "double precision";
	if ((kinds & ~(KIND_INT32 | KIND_INT64 | KIND_DOUBLE | KIND_DECIMAL)) == 0)
		return "numeric";
	if (kinds == KIND_BOOL)
		return "boolean";
	if (kinds == KIND_STRING || kinds == KIND_OBJECTID || kinds == (KIND_STRING | KIND_OBJECTID))
		return "text";
	if (kinds == KIND_DATE)
		return "timestamp with time zone";
	if (kinds == KIND_UUID)
		return "uuid";
	if (kinds == KIND_BINARY)
		return "bytea";
	return "jsonb";				/* documents, arrays, mixed kinds */
}

/*
 * IMPORT FOREIGN SCHEMA <MongoDB database> FROM SERVER ... INTO ...:
 * a foreign table per collection, with a column per top-level field seen in
 * the first sample_size documents (option, default 100), typed by the
 * values seen, and a jsonb column "doc" holding the whole document.
 */
List *
polyglotMongoImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	UserMapping *user = polyglot_find_user_mapping(GetUserId(), serverOid);
	MongoConn  *conn = polyglot_mongo_get_connection(server, user);
	int			sample_size = 100;
	mongoc_database_t *db;
	char	  **names;
	bson_error_t error;
	List	   *commands = NIL;
	ListCell   *lc;
	int			i;

	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "sample_size") == 0)
		{
			char	   *end;
			long		v = strtol(defGetString(def), &end, 10);

			if (*end != '\0' || v < 1 || v > 100000)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"sample_size\": \"%s\"", defGetString(def)),
						 errhint("A number of documents from 1 to 100000.")));
			sample_size = (int) v;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA", def->defname),
					 errhint("Valid options are: sample_size.")));
	}

	db = mongoc_client_get_database(mongo_client(conn), stmt->remote_schema);
	names = mongoc_database_get_collection_names_with_opts(db, NULL, &error);
	mongoc_database_destroy(db);
	if (names == NULL)
		polyglot_mongo_report_error(conn, &error, "listCollections");

	PG_TRY();
	{
		for (i = 0; names[i]; i++)
		{
			const char *name = names[i];
			bool		wanted = (stmt->list_type == FDW_IMPORT_SCHEMA_ALL);
			mongoc_collection_t *coll;
			mongoc_cursor_t *cursor;
			bson_t	   *opts;
			bson_t		filter = BSON_INITIALIZER;
			const bson_t *doc;
			List	   *fields = NIL;
			StringInfoData sql;
			ListCell   *fc;
			bool		has_doc = false;

			foreach(lc, stmt->table_list)
			{
				RangeVar   *rv = (RangeVar *) lfirst(lc);

				if (strcmp(rv->relname, name) == 0)
					wanted = (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO);
			}
			if (stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT)
			{
				wanted = true;
				foreach(lc, stmt->table_list)
					if (strcmp(((RangeVar *) lfirst(lc))->relname, name) == 0)
						wanted = false;
			}
			if (!wanted || strncmp(name, "system.", 7) == 0)
				continue;

			/* sample the first documents */
			coll = mongoc_client_get_collection(mongo_client(conn), stmt->remote_schema, name);
			opts = BCON_NEW("limit", BCON_INT64(sample_size));
			cursor = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
			while (mongoc_cursor_next(cursor, &doc))
			{
				bson_iter_t iter;

				if (!bson_iter_init(&iter, doc))
					continue;
				while (bson_iter_next(&iter))
				{
					const char *key = bson_iter_key(&iter);
					SampledField *f = NULL;

					foreach(fc, fields)
						if (strcmp(((SampledField *) lfirst(fc))->name, key) == 0)
							f = (SampledField *) lfirst(fc);
					if (f == NULL)
					{
						f = palloc0(sizeof(SampledField));
						f->name = pstrdup(key);
						fields = lappend(fields, f);
					}
					f->kinds |= bson_kind(bson_iter_type(&iter), &iter);
				}
			}
			if (mongoc_cursor_error(cursor, &error))
			{
				mongoc_cursor_destroy(cursor);
				mongoc_collection_destroy(coll);
				bson_destroy(opts);
				polyglot_mongo_report_error(conn, &error, "a sample of a collection");
			}
			mongoc_cursor_destroy(cursor);
			mongoc_collection_destroy(coll);
			bson_destroy(opts);

			initStringInfo(&sql);
			appendStringInfo(&sql, "CREATE FOREIGN TABLE %s (", quote_identifier(name));
			if (fields == NIL)
				appendStringInfoString(&sql, "_id text, ");
			foreach(fc, fields)
			{
				SampledField *f = (SampledField *) lfirst(fc);
				char		colname[NAMEDATALEN];

				strlcpy(colname, f->name, sizeof(colname));
				if (strcmp(f->name, "doc") == 0)
					has_doc = true;
				appendStringInfo(&sql, "%s %s", quote_identifier(colname), column_type(f->kinds));

				/*
				 * A name cut to fit keeps its field; so does a jsonb column,
				 * which without the option would get the whole document.
				 */
				if (strcmp(colname, f->name) != 0 || strcmp(column_type(f->kinds), "jsonb") == 0)
					appendStringInfo(&sql, " OPTIONS (field %s)", quote_literal_cstr(f->name));
				appendStringInfoString(&sql, ", ");
			}
			appendStringInfo(&sql, "%s jsonb) SERVER %s OPTIONS (database %s, collection %s)",
							 has_doc ? "document" : "doc",
							 quote_identifier(server->servername),
							 quote_literal_cstr(stmt->remote_schema),
							 quote_literal_cstr(name));
			commands = lappend(commands, sql.data);
		}
	}
	PG_FINALLY();
	{
		bson_strfreev(names);
	}
	PG_END_TRY();
	return commands;
}
