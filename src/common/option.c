/*-------------------------------------------------------------------------
 *
 * option.c
 *		The option framework shared by the three foreign-data wrappers:
 *		validation of names and values at CREATE/ALTER time, typed access
 *		to validated options, user mapping lookup; and the validation of
 *		route options when polyglot.sync() creates a route.
 *
 * Each store declares its options in a PolyglotOption table (see
 * redis_option.c, mongo_option.c, elastic_option.c).  Validation here is the
 * only place that decides whether an option is known, whether it belongs to
 * the catalog it was given in and whether its value parses, so every store
 * reports the same errors the same way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#include "pg_polyglot.h"
#include "common/store.h"
#include "core/core.h"

static const char *
catalog_name(Oid catalog)
{
	switch (catalog)
	{
		case ForeignDataWrapperRelationId:
			return "foreign-data wrappers";
		case ForeignServerRelationId:
			return "servers";
		case UserMappingRelationId:
			return "user mappings";
		case ForeignTableRelationId:
			return "foreign tables";
		case AttributeRelationId:
			return "columns";
	}
	return "this object";
}

/*
 * Returns the comma-separated names of the options valid in a catalog, or
 * NULL when there are none.  Allocated in the current memory context.
 */
static char *
valid_option_names(const PolyglotOption *options, Oid catalog)
{
	StringInfoData buf;
	const PolyglotOption *opt;

	initStringInfo(&buf);
	for (opt = options; opt->name; opt++)
	{
		if (opt->catalog != catalog)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, opt->name);
	}
	return buf.len > 0 ? buf.data : NULL;
}

static void
validate_value(const PolyglotOption *opt, DefElem *def)
{
	const char *value = defGetString(def);

	switch (opt->type)
	{
		case POLYGLOT_OPT_ANY_STRING:
			break;
		case POLYGLOT_OPT_STRING:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			break;
		case POLYGLOT_OPT_INT:
			{
				int			v = polyglot_option_int(def);

				if (v < opt->min || v > opt->max)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("value for option \"%s\" is out of range: %d",
									opt->name, v),
							 errhint("Valid values range from %d to %d.",
									 opt->min, opt->max)));
			}
			break;
		case POLYGLOT_OPT_BOOL:
			(void) polyglot_option_bool(def);
			break;
		case POLYGLOT_OPT_DURATION:
			(void) polyglot_option_duration(def);
			break;
		case POLYGLOT_OPT_ENUM:
			{
				const char *const *v;
				StringInfoData buf;

				for (v = opt->enum_values; *v; v++)
					if (strcmp(*v, value) == 0)
						break;
				if (*v)
					break;
				initStringInfo(&buf);
				for (v = opt->enum_values; *v; v++)
					appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", *v);
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"",
								opt->name, value),
						 errhint("Valid values are: %s.", buf.data)));
			}
			break;
	}
	if (opt->check)
		opt->check(opt->name, value);
}

/* "servers of foreign-data wrapper \"x\"", or the wrapper itself */
static char *
object_phrase(const char *fdwname, Oid catalog)
{
	if (catalog == ForeignDataWrapperRelationId)
		return psprintf("foreign-data wrapper \"%s\"", fdwname);
	return psprintf("%s of foreign-data wrapper \"%s\"", catalog_name(catalog), fdwname);
}

/*
 * Reports an option that is unknown in a catalog: a secret outside a user
 * mapping, an option of another object, or an unknown name.  The hint lists
 * the options that are valid where this one was given.
 */
static void
report_invalid_option(const char *fdwname, const PolyglotOption *options,
					  const char *name, Oid catalog,
					  const PolyglotOption *elsewhere)
{
	char	   *valid = valid_option_names(options, catalog);
	char	   *object = object_phrase(fdwname, catalog);

	if (elsewhere && elsewhere->secret)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" is a secret and is only allowed in user mappings",
						name),
				 errhint("Use CREATE USER MAPPING ... SERVER ... OPTIONS (%s '...'), which only the user and superusers can read.",
						 name)));
	if (elsewhere)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" is not valid for %s", name, object),
				 errdetail("It is an option for %s.", catalog_name(elsewhere->catalog)),
				 valid ? errhint("Valid options for %s are: %s.", object, valid)
				 : errhint("No options are valid for %s.", object)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", name),
			 valid ? errhint("Valid options for %s are: %s.", object, valid)
			 : errhint("No options are valid for %s.", object)));
}

/*
 * Validates a list of DefElem options given for one catalog object of one
 * foreign-data wrapper.  Ereports on the first unknown or misplaced option
 * or bad value; returns normally when everything is valid.
 */
void
polyglot_validate_options(const char *fdwname, const PolyglotOption *options,
						  List *options_list, Oid catalog)
{
	ListCell   *cell;

	foreach(cell, options_list)
	{
		DefElem    *def = (DefElem *) lfirst(cell);
		const PolyglotOption *opt;
		const PolyglotOption *elsewhere = NULL;

		for (opt = options; opt->name; opt++)
		{
			if (strcmp(opt->name, def->defname) != 0)
				continue;
			if (opt->catalog == catalog)
				break;
			elsewhere = opt;
		}

		if (opt->name == NULL)
			report_invalid_option(fdwname, options, def->defname, catalog, elsewhere);

		validate_value(opt, def);
	}
}

/*
 * Typed accessors.  They ereport on a bad value, so they double as the
 * value checks of the validator and can be used on stored options, which
 * were validated when they were written.
 */
int
polyglot_option_int(DefElem *def)
{
	const char *value = defGetString(def);
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (value[0] == '\0' || *end != '\0' || errno == ERANGE ||
		v < PG_INT32_MIN || v > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for integer option \"%s\": \"%s\"",
						def->defname, value)));
	return (int) v;
}

bool
polyglot_option_bool(DefElem *def)
{
	const char *value = defGetString(def);
	bool		result;

	if (!parse_bool(value, &result))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for boolean option \"%s\": \"%s\"",
						def->defname, value)));
	return result;
}

/*
 * A duration in milliseconds.  A bare number means milliseconds; units are
 * those of time-valued settings (ms, s, min).  Must be positive and at most
 * one hour: a timeout beyond that is a mistake.
 */
int
polyglot_option_duration(DefElem *def)
{
	const char *value = defGetString(def);
	const char *hintmsg = NULL;
	int			ms;

	if (!parse_int(value, &ms, GUC_UNIT_MS, &hintmsg))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						def->defname, value),
				 hintmsg ? errhint("%s", _(hintmsg))
				 : errhint("Give a duration such as '500ms', '5s' or '1min'; a bare number means milliseconds.")));
	if (ms < 1 || ms > 3600 * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("value for option \"%s\" is out of range: \"%s\"",
						def->defname, value),
				 errhint("Timeouts range from 1ms to 1h.")));
	return ms;
}

/*
 * Fills the connection options that every store shares: timeouts from the
 * server (with their defaults), user and password from the user mapping if
 * there is one.  Strings point into the option lists.
 */
void
polyglot_get_conn_options(ForeignServer *server, UserMapping *user,
						  PolyglotConnOptions *opts)
{
	ListCell   *cell;

	memset(opts, 0, sizeof(*opts));
	opts->connect_timeout_ms = POLYGLOT_DEFAULT_CONNECT_TIMEOUT_MS;
	opts->io_timeout_ms = POLYGLOT_DEFAULT_IO_TIMEOUT_MS;
	opts->tls_verify = true;

	foreach(cell, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "connect_timeout") == 0)
		{
			opts->connect_timeout_ms = polyglot_option_duration(def);
			opts->connect_timeout_set = true;
		}
		else if (strcmp(def->defname, "io_timeout") == 0)
		{
			opts->io_timeout_ms = polyglot_option_duration(def);
			opts->io_timeout_set = true;
		}
		else if (strcmp(def->defname, "tls") == 0)
			opts->tls = polyglot_option_bool(def);
		else if (strcmp(def->defname, "tls_verify") == 0)
			opts->tls_verify = polyglot_option_bool(def);
		else if (strcmp(def->defname, "tls_ca_file") == 0)
			opts->tls_ca_file = defGetString(def);
		else if (strcmp(def->defname, "tls_cert_file") == 0)
			opts->tls_cert_file = defGetString(def);
		else if (strcmp(def->defname, "tls_key_file") == 0)
			opts->tls_key_file = defGetString(def);
	}
	if (user)
	{
		opts->user = polyglot_option_string(user->options, "user", NULL);
		opts->password = polyglot_option_string(user->options, "password", NULL);
		opts->tls_key_password = polyglot_option_string(user->options, "tls_key_password", NULL);
	}
}

/*
 * The check of an option that makes the backend read a file of the
 * database host: a TLS client key and certificate (the host's identity)
 * or a file of certificate authorities (a read of a FIFO or a device would
 * block the backend beyond any cancel).  Only a superuser may set one, as
 * postgres_fdw keeps a non-superuser from connecting as the server's OS
 * user.  A server holding such an option can be altered by superusers
 * only.
 */
void
polyglot_check_superuser_option(const char *name, const char *value)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers can set option \"%s\"", name),
				 errdetail("It makes the database server read a file of its own host, \"%s\".",
						   value)));
}

/*
 * Checks across the TLS options of a server: a file or setting of TLS
 * without TLS is a mistake (has_tls_option: the store has the tls option;
 * Elasticsearch's TLS comes from its url's scheme instead), a key without
 * its certificate too.
 */
void
polyglot_check_tls_options(List *options, Oid catalog, bool has_tls_option)
{
	static const char *const tls_options[] = {
		"tls_verify", "tls_ca_file", "tls_cert_file", "tls_key_file", NULL
	};
	const char *const *o;
	DefElem    *tls = polyglot_option_find(options, "tls");

	if (catalog != ForeignServerRelationId)
		return;
	if (polyglot_option_find(options, "tls_key_file") &&
		!polyglot_option_find(options, "tls_cert_file"))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"tls_key_file\" needs option \"tls_cert_file\""),
				 errhint("Name the client certificate too, or put certificate and key in one file given as \"tls_cert_file\".")));
	if (!has_tls_option || (tls && polyglot_option_bool(tls)))
		return;
	for (o = tls_options; *o; o++)
		if (polyglot_option_find(options, *o))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("option \"%s\" needs option \"tls\" 'true'", *o),
					 errhint("Add tls 'true' to the server's options.")));
}

/*
 * The value of an option by name in a list of DefElem, or default_value.
 */
const char *
polyglot_option_string(List *options, const char *name, const char *default_value)
{
	DefElem    *def = polyglot_option_find(options, name);

	return def ? defGetString(def) : default_value;
}

/*
 * An option by name in a list of DefElem, or NULL.
 */
DefElem *
polyglot_option_find(List *options, const char *name)
{
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, name) == 0)
			return def;
	}
	return NULL;
}

/*
 * The user mapping that applies to userid on a server: the user's own, else
 * the PUBLIC one, else NULL.  Unlike GetUserMapping() a missing mapping is
 * not an error: stores without authentication need none.
 */
UserMapping *
polyglot_find_user_mapping(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	UserMapping *um;
	Datum		datum;
	bool		isnull;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NULL;

	um = (UserMapping *) palloc(sizeof(UserMapping));
	um->umid = ((Form_pg_user_mapping) GETSTRUCT(tp))->oid;
	um->userid = userid;
	um->serverid = serverid;
	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
							Anum_pg_user_mapping_umoptions, &isnull);
	um->options = isnull ? NIL : untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return um;
}

/* ---------------------------------------------------------------- route options */

/* A top-level key of a jsonb object, or false when it has none */
static bool
jsonb_key(Jsonb *jb, const char *name, JsonbValue *v)
{
	return getKeyJsonValueFromContainer(&jb->root, name, strlen(name), v) != NULL;
}

/*
 * The value of a top-level string or number option of a stored route, as
 * text, or NULL.
 */
char *
polyglot_route_option_text(Jsonb *options, const char *name)
{
	JsonbValue	v;

	if (!jsonb_key(options, name, &v))
		return NULL;
	if (v.type == jbvString)
		return pnstrdup(v.val.string.val, v.val.string.len);
	if (v.type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
	return NULL;
}

/* The route options of every store */
static const PolyglotRouteOption common_route_options[] = {
	{.name = "columns", .type = POLYGLOT_ROUTE_OPT_COLUMNS},
	{.name = "exclude", .type = POLYGLOT_ROUTE_OPT_COLUMNS},
	{.name = "where", .type = POLYGLOT_ROUTE_OPT_NONEMPTY,
	.type_error = "option \"where\" must be a string: a boolean SQL expression over the table's columns"},
	{.name = "replicated", .type = POLYGLOT_ROUTE_OPT_BOOLEAN,
	.type_error = "option \"replicated\" must be true or false"},
	{.name = "name", .type = POLYGLOT_ROUTE_OPT_NONEMPTY,
	.type_error = "option \"name\" must be a non-empty string: the route's name"},
	{.name = "include", .type = POLYGLOT_ROUTE_OPT_ANY},
	{.name = "embed", .type = POLYGLOT_ROUTE_OPT_ANY},
	{.name = NULL}
};

static const PolyglotRouteOption *
route_option_entry(const PolyglotRouteOption *table, const char *name)
{
	const PolyglotRouteOption *opt;

	for (opt = table; opt->name; opt++)
		if (strcmp(opt->name, name) == 0)
			return opt;
	for (opt = common_route_options; opt->name; opt++)
		if (strcmp(opt->name, name) == 0)
			return opt;
	return NULL;
}

/* Is a JSON number whole and within 1 .. PG_INT32_MAX? */
static bool
numeric_is_seconds(Numeric n)
{
	Datum		d = NumericGetDatum(n);
	Datum		one = DirectFunctionCall1(int4_numeric, Int32GetDatum(1));
	Datum		max = DirectFunctionCall1(int4_numeric, Int32GetDatum(PG_INT32_MAX));
	Datum		whole = DirectFunctionCall2(numeric_trunc, d, Int32GetDatum(0));

	return DatumGetBool(DirectFunctionCall2(numeric_ge, d, one)) &&
		DatumGetBool(DirectFunctionCall2(numeric_le, d, max)) &&
		DatumGetBool(DirectFunctionCall2(numeric_eq, d, whole));
}

/*
 * The value of a route option, checked against its type in the store's
 * table: false when the route does not have it.  A value of another type
 * is an error with the table's message.
 */
bool
polyglot_route_check_value(PolyglotRouteCheck *check, const char *name, JsonbValue *value)
{
	const PolyglotRouteOption *opt = route_option_entry(check->route_options, name);
	bool		ok = true;

	if (opt == NULL)
		elog(ERROR, "pg_polyglot: route option \"%s\" is not in the table", name);
	if (!jsonb_key(check->options, name, value))
		return false;
	switch (opt->type)
	{
		case POLYGLOT_ROUTE_OPT_ANY:
			break;
		case POLYGLOT_ROUTE_OPT_STRING:
			ok = value->type == jbvString;
			break;
		case POLYGLOT_ROUTE_OPT_NONEMPTY:
			ok = value->type == jbvString && value->val.string.len > 0;
			break;
		case POLYGLOT_ROUTE_OPT_SECONDS:
			ok = value->type == jbvNumeric && numeric_is_seconds(value->val.numeric);
			break;
		case POLYGLOT_ROUTE_OPT_BOOLEAN:
			ok = value->type == jbvBool;
			break;
		case POLYGLOT_ROUTE_OPT_COLUMNS:
			{
				JsonbIterator *it;
				JsonbValue	e;
				JsonbIteratorToken tok;

				ok = value->type == jbvBinary && JsonContainerIsArray(value->val.binary.data);
				if (!ok)
					break;
				it = JsonbIteratorInit(value->val.binary.data);
				while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
					if (tok == WJB_ELEM && e.type != jbvString)
						ok = false;
			}
			break;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", opt->type_error ? opt->type_error :
								 psprintf("option \"%s\" must be an array of column names", name))));
	return true;
}

/* A string route option (of type STRING or NONEMPTY), or NULL without it */
char *
polyglot_route_check_string(PolyglotRouteCheck *check, const char *name)
{
	JsonbValue	v;

	if (!polyglot_route_check_value(check, name, &v))
		return NULL;
	if (v.type != jbvString)
		elog(ERROR, "pg_polyglot: route option \"%s\" is not a string", name);
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/* Sets a string option of the route's options as they will be stored */
void
polyglot_route_check_set(PolyglotRouteCheck *check, const char *name, const char *value)
{
	StringInfoData buf;
	Jsonb	   *pair;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	escape_json(&buf, name);
	appendStringInfoString(&buf, ": ");
	escape_json(&buf, value);
	appendStringInfoChar(&buf, '}');
	pair = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
	check->result = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
													   JsonbPGetDatum(check->result),
													   JsonbPGetDatum(pair)));
}

/*
 * The default name of a route's target: the table's name in schema
 * public, schema.table elsewhere, so that tables of one name in two
 * schemas do not share a target.
 */
char *
polyglot_route_default_target(Oid relid)
{
	char	   *nspname = get_namespace_name(get_rel_namespace(relid));
	char	   *relname = get_rel_name(relid);

	if (nspname == NULL || relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (strcmp(nspname, "public") == 0)
		return relname;
	return psprintf("%s.%s", nspname, relname);
}

/* The "columns" and "exclude" options, every store's */
static void
check_route_columns(PolyglotRouteCheck *check)
{
	static const char *const names[] = {"columns", "exclude"};
	JsonbValue	unused;
	int			i;

	if (jsonb_key(check->options, "columns", &unused) &&
		jsonb_key(check->options, "exclude", &unused))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"columns\" and \"exclude\" cannot be combined")));
	for (i = 0; i < (int) lengthof(names); i++)
	{
		JsonbValue	v;
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;

		if (!polyglot_route_check_value(check, names[i], &v))
			continue;
		it = JsonbIteratorInit(v.val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			char	   *col;
			AttrNumber	attnum;

			if (tok != WJB_ELEM)
				continue;
			col = pnstrdup(e.val.string.val, e.val.string.len);
			attnum = get_attnum(check->source, col);
			if (attnum <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of option \"%s\" does not exist in %s",
								col, names[i], check->source_text)));
		}
	}
}

/*
 * The SQL objects of the installed extension are of version 1.1 or later:
 * the options that 1.0's functions do not carry out ("where",
 * "replicated", "name") are refused before ALTER EXTENSION pg_polyglot
 * UPDATE.
 */
static void
require_objects_of(const char *option)
{
	bool		old = false;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_polyglot: SPI_connect failed");
	if (SPI_execute("SELECT extversion OPERATOR(pg_catalog.=) '1.0' FROM pg_catalog.pg_extension "
					"WHERE extname OPERATOR(pg_catalog.=) 'pg_polyglot'", true, 0) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		old = !isnull && DatumGetBool(d);
	}
	SPI_finish();
	if (old)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("route option \"%s\" needs version 1.1 of extension pg_polyglot", option),
				 errhint("ALTER EXTENSION pg_polyglot UPDATE.")));
}

/*
 * The options every store has beside "columns" and "exclude": "where", a
 * row filter, checked and stored as PostgreSQL prints it
 * (src/core/rowfilter.c); "replicated"; "name".
 */
static void
check_common_route_options(PolyglotRouteCheck *check)
{
	char	   *where = polyglot_route_check_string(check, "where");
	JsonbValue	v;

	if (where != NULL)
	{
		require_objects_of("where");
		polyglot_route_check_set(check, "where",
								 polyglot_where_text(check->source, where, NULL, false));
	}
	if (polyglot_route_check_value(check, "replicated", &v))
		require_objects_of("replicated");
	if (polyglot_route_check_value(check, "include", &v) ||
		polyglot_route_check_value(check, "embed", &v))
	{
		char	   *mode = polyglot_route_option_text(check->result, "mode");

		require_objects_of("include");
		if (mode && strcmp(mode, "json") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options \"include\" and \"embed\" need a Redis route in mode \"json\"")));
		check->result = polyglot_document_as_given(check->source, check->result);
	}
	if (polyglot_route_check_value(check, "name", &v))
	{
		char	   *name = pnstrdup(v.val.string.val, v.val.string.len);

		require_objects_of("name");
		/* polyglot.route() takes a number for a route's id */
		if (strspn(name, "0123456789") == strlen(name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("route name \"%s\" is a number", name),
					 errdetail("The functions that take a route's name take its id as a number too.")));
	}
}

/*
 * Validates the options of a route being created from source to server
 * (a server of store), whose key columns (char *) are key_columns:
 * ereports on the first error, naming the option (and listing the valid
 * ones for an unknown name).  Returns the options with defaults filled in,
 * as the route stores them.
 */
Jsonb *
polyglot_validate_route_options(const PolyglotStoreInfo *store, Oid source,
								ForeignServer *server, List *key_columns, Jsonb *options)
{
	PolyglotRouteCheck check;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("route options must be a JSON object")));

	/* only known names */
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		StringInfoData valid;
		const PolyglotRouteOption *opt;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		if (route_option_entry(store->route_options, name) != NULL)
			continue;
		initStringInfo(&valid);
		for (opt = store->route_options; opt->name; opt++)
			appendStringInfo(&valid, "%s, ", opt->name);
		for (opt = common_route_options; opt->name; opt++)
			appendStringInfo(&valid, "%s%s", opt->name, opt[1].name ? ", " : "");
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown option \"%s\" for a %s route", name, store->label),
				 errhint("Valid options are: %s.", valid.data)));
	}

	memset(&check, 0, sizeof(check));
	check.source = source;
	check.source_text = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(source)));
	check.server = server;
	check.key_columns = key_columns;
	check.label = store->label;
	check.route_options = store->route_options;
	check.options = options;
	check.result = options;
	store->check_route(&check);
	check_route_columns(&check);
	check_common_route_options(&check);
	return check.result;
}

PG_FUNCTION_INFO_V1(polyglot_route_options_sql);

/*
 * polyglot._route_options(source regclass, server name, keys name[],
 * options jsonb) returns jsonb: the options of a route being created,
 * validated, with defaults filled in.
 */
Datum
polyglot_route_options_sql(PG_FUNCTION_ARGS)
{
	Oid			source = PG_GETARG_OID(0);
	ForeignServer *server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(1)), false);
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(2);
	Jsonb	   *options = PG_GETARG_JSONB_P(3);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	List	   *key_columns = NIL;

	/*
	 * The source stays until the route exists: a DROP TABLE committed
	 * since the caller looked at it is an error here, not names gone from
	 * the catalog under the checks.
	 */
	LockRelationOid(source, AccessShareLock);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(source)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", source)));

	deconstruct_array(keys, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			key_columns = lappend(key_columns, pstrdup(NameStr(*DatumGetName(elems[i]))));
	PG_RETURN_JSONB_P(polyglot_validate_route_options(polyglot_server_store(server), source,
													  server, key_columns, options));
}
