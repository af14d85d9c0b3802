/*-------------------------------------------------------------------------
 *
 * elastic.h
 *		Declarations shared by the Elasticsearch/OpenSearch files: options,
 *		HTTP connections and error reporting.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_ELASTIC_H
#define POLYGLOT_ELASTIC_H

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "common/conncache.h"
#include "common/json_writer.h"

typedef struct ElasticConnOptions
{
	PolyglotConnOptions common;
	const char *url;			/* one or more base URLs, comma-separated */
	const char *api_key;		/* from the user mapping, or NULL */
} ElasticConnOptions;

/* The options of a sync route, as the sink reads them */
typedef struct ElasticRouteOptions
{
	const char *index;
	const char *routing;		/* a key column, or NULL */
} ElasticRouteOptions;

struct PolyglotRoute;

/* elastic_option.c */
extern const PolyglotOption polyglot_elastic_options[];
extern char *polyglot_elastic_endpoint(ForeignServer *server);
extern const PolyglotRouteOption polyglot_elastic_route_options[];
extern void polyglot_elastic_check_route(PolyglotRouteCheck *check);
extern const ElasticRouteOptions *polyglot_elastic_route(struct PolyglotRoute *route);
extern void polyglot_elastic_get_options(ForeignServer *server, UserMapping *user,
								ElasticConnOptions *opts);
extern List *polyglot_elastic_split_urls(const char *urls);
extern void polyglot_elastic_check_index_name(const char *name, const char *value);

/* elastic_connection.c */
#define ELASTIC_TRACKED_PITS	16

typedef struct ElasticConn
{
	PolyglotConnEntry base;		/* base.conn is an ElasticHandle */
	char		servername[NAMEDATALEN];
	char		flavor;			/* 'e' Elasticsearch, 'o' OpenSearch, 0 not known yet */
	/* points in time open on the server (malloc'd ids), see elastic_fdw.c */
	char	   *pits[ELASTIC_TRACKED_PITS];
	bool		pit_stale[ELASTIC_TRACKED_PITS];
} ElasticConn;

typedef struct ElasticResponse
{
	long		status;			/* HTTP status */
	char	   *body;			/* palloc'd, NUL-terminated */
	size_t		len;
	bool		elastic_product;	/* X-elastic-product: Elasticsearch */
	const char *url;			/* the node that answered, palloc'd */
} ElasticResponse;

extern ElasticConn *polyglot_elastic_get_connection(ForeignServer *server, UserMapping *user);
extern void polyglot_elastic_request(ElasticConn *conn, const char *method, const char *path,
							const char *body, size_t bodylen,
							ElasticResponse *response);
extern void polyglot_elastic_request_start(ElasticConn *conn, PolyglotConnPin *pin,
								  const char *method, const char *path,
								  const char *body, size_t bodylen);
extern void polyglot_elastic_request_complete(ElasticConn *conn, PolyglotConnPin *pin,
									 const char *method, const char *path,
									 const char *body, size_t bodylen,
									 ElasticResponse *response);
extern void polyglot_elastic_request_cancel(PolyglotConnPin *pin);
extern void polyglot_elastic_report_error(ElasticConn *conn, const ElasticResponse *response,
								 const char *what) pg_attribute_noreturn();
extern Jsonb *polyglot_elastic_try_parse_json(const char *text);
extern char *polyglot_elastic_json_string(JsonbContainer *container, const char *key);
extern JsonbContainer *polyglot_elastic_json_object(JsonbContainer *container, const char *key);
extern int	polyglot_elastic_json_int(JsonbContainer *container, const char *key, int default_value);
extern char *polyglot_elastic_error_text(JsonbContainer *error);
extern Jsonb *polyglot_elastic_parse_response(ElasticConn *conn, const ElasticResponse *response,
									 const char *what);

/* elastic_mapping.c */
typedef struct ElasticField
{
	char	   *path;			/* dotted path from the _source root: "brand.name" */
	char	   *type;			/* "keyword", "text", "long", "date", ...; "object"
								 * for properties without a type */
	char	   *keyword;		/* of a text field: the path of its keyword
								 * sub-field ("name.keyword"), or NULL */
	int			ignore_above;	/* of the keyword field (the field itself or the
								 * sub-field), -1 when none */
	bool		normalizer;		/* the keyword field has a normalizer: its terms
								 * are not the values */
	bool		conflict;		/* not to be filtered on: indices of a pattern map
								 * it differently, or the index does not hold
								 * what _source says (null_value,
								 * ignore_malformed, copy_to target, under a
								 * nested field) */
} ElasticField;

typedef struct ElasticIndexMapping
{
	char	   *index;
	List	   *fields;			/* of ElasticField, parents before children */
} ElasticIndexMapping;

extern List *polyglot_elastic_read_mappings(ElasticConn *conn, const char *index);
extern ElasticField *polyglot_elastic_find_field(List *fields, const char *path);
extern List *polyglot_elastic_merged_fields(List *mappings);

/*
 * Values as Elasticsearch and OpenSearch documents hold them (json_writer.c):
 * dates and times in ISO 8601, a timestamptz in UTC whatever the session's
 * TimeZone, an oid as the number it is, bytea in base64 (what a binary
 * field takes), json on one line (a _bulk body is one JSON text a line).
 */
#define ELASTIC_JSON_RULES \
	(POLYGLOT_JSON_TIMESTAMPTZ_UTC | POLYGLOT_JSON_TIME_ISO8601 | \
	 POLYGLOT_JSON_OID_NUMBER | POLYGLOT_JSON_BYTEA_BASE64 | POLYGLOT_JSON_ONE_LINE)

static inline void
polyglot_elastic_append_json_value(StringInfo buf, Datum value, bool isnull, Oid typid)
{
	polyglot_json_append_value(buf, value, isnull, typid, ELASTIC_JSON_RULES);
}

/* elastic_import.c */
extern List *polyglotElasticImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

/* elastic_connection.c: which of the two servers it is */
extern bool polyglot_elastic_is_opensearch(ElasticConn *conn);

#endif							/* POLYGLOT_ELASTIC_H */
