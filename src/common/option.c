/*-------------------------------------------------------------------------
 *
 * option.c
 *		The option framework shared by the three foreign-data wrappers:
 *		validation of names and values at CREATE/ALTER time, typed access
 *		to validated options, user mapping lookup and store identification.
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
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "pg_polyglot.h"

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
	}
	if (user)
	{
		opts->user = polyglot_option_string(user->options, "user", NULL);
		opts->password = polyglot_option_string(user->options, "password", NULL);
	}
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
