/*-------------------------------------------------------------------------
 *
 * elastic_import.c
 *		IMPORT FOREIGN SCHEMA for the polyglot_elastic wrapper: a foreign
 *		table per Elasticsearch or OpenSearch index, with columns from the
 *		index's mapping.
 *
 * The remote schema is an index name, an alias or a pattern ("logs-*",
 * "a,b"; "*" or "_all" for every index), read with one GET /<it>/_mapping.
 * Indices whose name starts with a dot (system and hidden ones) are
 * skipped; a pattern that matches nothing imports nothing.  The wrapper
 * takes no IMPORT options.
 *
 * Each index becomes a table of the same name, with the table option index
 * and these columns:
 *   - "_id text", the document id;
 *   - one column per top-level field, in the order the server shows them
 *     (by name).  An object or nested field is one jsonb column holding its
 *     whole value, its sub-fields are not columns.  A jsonb column carries
 *     OPTIONS (field '<name>'): without it, it would be the whole _source.
 *     Leaf types:
 *     keyword, text and the other string types, ip, version -> text;
 *     long -> bigint; integer -> integer; short, byte -> smallint;
 *     double -> double precision; float, half_float -> real;
 *     scaled_float, unsigned_long -> numeric; boolean -> boolean;
 *     date, date_nanos -> timestamp with time zone; anything else
 *     (geo_point, ranges, vectors, ...) -> jsonb;
 *   - the wrapper's special columns "_score real" and "query text", each
 *     only when no field has that name.  A field named _score or query
 *     keeps the name, with OPTIONS (field '<name>') so that it reads the
 *     field; the special column is then left out.  So does a field named
 *     _highlight (no _highlight column is made).  A field named _id cannot
 *     exist (it is metadata).  A name longer than an identifier is cut and
 *     keeps its field with OPTIONS (field ...) too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "pg_polyglot.h"
#include "elastic/elastic.h"

/* Elasticsearch field types and the column types they import as */
static const struct
{
	const char *field;
	const char *column;
}			elastic_types[] = {
	{"keyword", "text"}, {"text", "text"}, {"wildcard", "text"},
	{"constant_keyword", "text"}, {"match_only_text", "text"},
	{"ip", "text"}, {"version", "text"},
	{"long", "bigint"}, {"integer", "integer"},
	{"short", "smallint"}, {"byte", "smallint"},
	{"double", "double precision"}, {"float", "real"}, {"half_float", "real"},
	{"scaled_float", "numeric"}, {"unsigned_long", "numeric"},
	{"boolean", "boolean"},
	{"date", "timestamp with time zone"}, {"date_nanos", "timestamp with time zone"},
};

/* The column type of a field type: jsonb for objects and anything unknown */
static const char *
column_type(const char *type)
{
	size_t		i;

	for (i = 0; i < lengthof(elastic_types); i++)
		if (strcmp(elastic_types[i].field, type) == 0)
			return elastic_types[i].column;
	return "jsonb";
}

/* A name cut to fit an identifier (NAMEDATALEN - 1 bytes, whole characters) */
static char *
identifier_for(const char *name)
{
	return pnstrdup(name, pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1));
}

/*
 * The remote schema as a URL path segment: letters, digits, - . _ * and
 * commas as they are, other bytes percent-encoded, so that no name turns
 * into another request ("a/../_cluster", "x?y").
 */
static char *
url_path_segment(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || strchr("-._*,", c) != NULL)
			appendStringInfoChar(&buf, (char) c);
		else
			appendStringInfo(&buf, "%%%02X", c);
	}
	return buf.data;
}

/* Whether LIMIT TO or EXCEPT lets a table through (PostgreSQL checks again) */
static bool
table_wanted(ImportForeignSchemaStmt *stmt, const char *table)
{
	ListCell   *lc;

	foreach(lc, stmt->table_list)
		if (strcmp(((RangeVar *) lfirst(lc))->relname, table) == 0)
			return stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO;
	return stmt->list_type != FDW_IMPORT_SCHEMA_LIMIT_TO;
}

/* list_sort() comparators: fields by path, indices by name */
static int
compare_fields(const ListCell *a, const ListCell *b)
{
	return strcmp(((ElasticField *) lfirst(a))->path, ((ElasticField *) lfirst(b))->path);
}

static int
compare_indices(const ListCell *a, const ListCell *b)
{
	return strcmp(((ElasticIndexMapping *) lfirst(a))->index,
				  ((ElasticIndexMapping *) lfirst(b))->index);
}

/*
 * The CREATE FOREIGN TABLE command of one index, palloc'd.  Two fields whose
 * names are cut to the same identifier make a command PostgreSQL refuses.
 */
static char *
create_table_command(ImportForeignSchemaStmt *stmt, ElasticIndexMapping *m,
					 const char *table)
{
	StringInfoData sql;
	List	   *columns = NIL;
	const char *parent = NULL;
	bool		has_score = false;
	bool		has_query = false;
	ListCell   *lc;

	/* top-level fields: children follow their parent in the mapping's list */
	foreach(lc, m->fields)
	{
		ElasticField *f = (ElasticField *) lfirst(lc);
		size_t		len = parent ? strlen(parent) : 0;

		if (parent && strncmp(f->path, parent, len) == 0 && f->path[len] == '.')
			continue;
		parent = f->path;
		if (strcmp(f->path, "_id") != 0)
			columns = lappend(columns, f);
	}
	/* the server lists them by name; jsonb keeps keys shortest first */
	list_sort(columns, compare_fields);

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE FOREIGN TABLE %s (_id text", quote_identifier(table));
	foreach(lc, columns)
	{
		ElasticField *f = (ElasticField *) lfirst(lc);
		char	   *name = identifier_for(f->path);
		bool		is_score = strcmp(f->path, "_score") == 0;
		bool		is_query = strcmp(f->path, "query") == 0;
		const char *type = column_type(f->type);

		has_score = has_score || is_score;
		has_query = has_query || is_query;
		appendStringInfo(&sql, ", %s %s", quote_identifier(name), type);
		/* a field option where the name does not say the field by itself */
		if (is_score || is_query || strcmp(f->path, "_highlight") == 0 ||
			strcmp(name, f->path) != 0 ||
			strcmp(type, "jsonb") == 0)
			appendStringInfo(&sql, " OPTIONS (field %s)", quote_literal_cstr(f->path));
	}
	if (!has_score)
		appendStringInfoString(&sql, ", _score real");
	if (!has_query)
		appendStringInfoString(&sql, ", query text");
	appendStringInfo(&sql, ") SERVER %s OPTIONS (index %s)",
					 quote_identifier(stmt->server_name), quote_literal_cstr(m->index));
	return sql.data;
}

/*
 * IMPORT FOREIGN SCHEMA <index, alias or pattern> FROM SERVER ... INTO ...:
 * the CREATE FOREIGN TABLE commands, as a List of palloc'd strings, one
 * per index (by name), NIL when nothing matches.  Ereports on any import
 * option, and when the server refuses the request (404 for a named index
 * that does not exist).
 */
List *
polyglotElasticImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	UserMapping *user = polyglot_find_user_mapping(GetUserId(), serverOid);
	ElasticConn *conn;
	List	   *mappings;
	List	   *commands = NIL;
	ListCell   *lc;

	if (stmt->options != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", linitial_node(DefElem, stmt->options)->defname),
				 errhint("IMPORT FOREIGN SCHEMA from a polyglot_elastic server takes no options.")));

	conn = polyglot_elastic_get_connection(server, user);
	mappings = polyglot_elastic_read_mappings(conn, url_path_segment(stmt->remote_schema));
	list_sort(mappings, compare_indices);

	foreach(lc, mappings)
	{
		ElasticIndexMapping *m = (ElasticIndexMapping *) lfirst(lc);
		char	   *table = identifier_for(m->index);

		if (m->index[0] == '.' || !table_wanted(stmt, table))
			continue;
		commands = lappend(commands, create_table_command(stmt, m, table));
	}
	return commands;
}
