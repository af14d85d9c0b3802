/*-------------------------------------------------------------------------
 *
 * elastic_mapping.c
 *		Reading the mappings of Elasticsearch and OpenSearch indices: the
 *		fields of each index, with their types, flattened to dotted paths.
 *
 * The planner asks which fields a filter or sort can use as it is (a
 * keyword, a number, a date), and IMPORT FOREIGN SCHEMA builds columns
 * from them.  One GET /<index>/_mapping answers both; an alias or a
 * pattern answers with every index it names.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "elastic/elastic.h"

/*
 * Appends the fields under a "properties" object, recursively.  Fields
 * under a nested field are marked conflict: a plain query does not see
 * them (only a nested query does).
 */
static void
add_properties(List **fields, JsonbContainer *properties, const char *prefix, bool in_nested,
			   List **copy_to)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;

	if (properties == NULL)
		return;
	it = JsonbIteratorInit(properties);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && name != NULL && v.type == jbvBinary)
		{
			JsonbContainer *def = v.val.binary.data;
			ElasticField *field = palloc0(sizeof(ElasticField));
			JsonbValue	option;
			char	   *type = polyglot_elastic_json_string(def, "type");
			JsonbContainer *sub = polyglot_elastic_json_object(def, "fields");

			field->path = prefix ? psprintf("%s.%s", prefix, name) : name;
			field->type = type ? type : pstrdup("object");
			field->ignore_above = -1;

			/*
			 * What the index holds is not what _source says: a null_value
			 * stands for nulls, malformed values are left out, a nested
			 * field's children are separate documents.
			 */
			field->conflict = in_nested ||
				getKeyJsonValueFromContainer(def, "null_value", 10, &option) ||
				getKeyJsonValueFromContainer(def, "ignore_malformed", 16, &option);
			if (getKeyJsonValueFromContainer(def, "copy_to", 7, &option))
				*copy_to = lappend(*copy_to, option.type == jbvString ?
								   pnstrdup(option.val.string.val, option.val.string.len) :
								   NULL);
			if (strcmp(field->type, "keyword") == 0)
			{
				field->ignore_above = polyglot_elastic_json_int(def, "ignore_above", -1);
				field->normalizer = polyglot_elastic_json_string(def, "normalizer") != NULL;
			}
			else if (sub != NULL)
			{
				/* a keyword sub-field serves exact matches of a text field */
				JsonbIterator *sit = JsonbIteratorInit(sub);
				JsonbValue	sv;
				JsonbIteratorToken stok;
				char	   *subname = NULL;

				while ((stok = JsonbIteratorNext(&sit, &sv, true)) != WJB_DONE)
				{
					if (stok == WJB_KEY)
						subname = pnstrdup(sv.val.string.val, sv.val.string.len);
					else if (stok == WJB_VALUE && subname && sv.type == jbvBinary &&
							 field->keyword == NULL)
					{
						char	   *subtype = polyglot_elastic_json_string(sv.val.binary.data, "type");

						if (subtype && strcmp(subtype, "keyword") == 0)
						{
							field->keyword = psprintf("%s.%s", field->path, subname);
							field->ignore_above = polyglot_elastic_json_int(sv.val.binary.data,
																   "ignore_above", -1);
							field->normalizer = polyglot_elastic_json_string(sv.val.binary.data,
																	"normalizer") != NULL;
						}
					}
				}
			}
			*fields = lappend(*fields, field);
			add_properties(fields, polyglot_elastic_json_object(def, "properties"), field->path,
						   in_nested || strcmp(field->type, "nested") == 0, copy_to);
			name = NULL;
		}
	}
}

/*
 * The mappings of an index, alias or pattern: a List of ElasticIndexMapping,
 * one per index, each with its fields (indices and fields in jsonb's key
 * order, shorter names first, not the server's) (every level:
 * an object is a field of type "object", its children follow it).  An
 * index that does not exist ereports (404); a pattern that matches nothing
 * returns NIL.
 */
List *
polyglot_elastic_read_mappings(ElasticConn *conn, const char *index)
{
	ElasticResponse response;
	char	   *path = psprintf("/%s/_mapping", index);
	char	   *what = psprintf("GET %s", path);
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;
	List	   *result = NIL;

	polyglot_elastic_request(conn, "GET", path, NULL, 0, &response);
	if (response.status >= 400)
		polyglot_elastic_report_error(conn, &response, what);
	jb = polyglot_elastic_parse_response(conn, &response, what);
	if (!JB_ROOT_IS_OBJECT(jb))
		return NIL;
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && name && v.type == jbvBinary)
		{
			ElasticIndexMapping *m = palloc0(sizeof(ElasticIndexMapping));
			JsonbContainer *mappings = polyglot_elastic_json_object(v.val.binary.data, "mappings");

			List	   *copy_to = NIL;
			ListCell   *lc;

			m->index = name;
			add_properties(&m->fields, polyglot_elastic_json_object(mappings, "properties"), NULL, false,
						   &copy_to);
			/* a copy_to target holds other fields' values, not its own */
			foreach(lc, copy_to)
			{
				ElasticField *target = lfirst(lc) ? polyglot_elastic_find_field(m->fields, lfirst(lc)) : NULL;

				if (target)
					target->conflict = true;
				else if (lfirst(lc) == NULL)
				{
					/* an array of targets: trust none of the fields */
					ListCell   *lf;

					foreach(lf, m->fields)
						((ElasticField *) lfirst(lf))->conflict = true;
				}
			}
			result = lappend(result, m);
			name = NULL;
		}
	}
	return result;
}

/* The field at a dotted path in a list of ElasticField, or NULL */
ElasticField *
polyglot_elastic_find_field(List *fields, const char *path)
{
	ListCell   *lc;

	foreach(lc, fields)
	{
		ElasticField *f = (ElasticField *) lfirst(lc);

		if (strcmp(f->path, path) == 0)
			return f;
	}
	return NULL;
}

/*
 * The fields of several indices as one list, for a query that reads them
 * all: a path mapped differently by two of them (another type, keyword
 * sub-field or ignore_above) is marked as a conflict, which the planner
 * does not push conditions on.
 */
List *
polyglot_elastic_merged_fields(List *mappings)
{
	List	   *merged = NIL;
	ListCell   *lm;

	foreach(lm, mappings)
	{
		ElasticIndexMapping *m = (ElasticIndexMapping *) lfirst(lm);
		ListCell   *lf;

		foreach(lf, m->fields)
		{
			ElasticField *f = (ElasticField *) lfirst(lf);
			ElasticField *seen = polyglot_elastic_find_field(merged, f->path);

			if (seen == NULL)
			{
				seen = palloc(sizeof(ElasticField));
				memcpy(seen, f, sizeof(ElasticField));
				merged = lappend(merged, seen);
			}
			else if (f->conflict || strcmp(seen->type, f->type) != 0 ||
					 (seen->keyword == NULL) != (f->keyword == NULL) ||
					 (seen->keyword && strcmp(seen->keyword, f->keyword) != 0) ||
					 seen->ignore_above != f->ignore_above || seen->normalizer != f->normalizer)
				seen->conflict = true;
		}
	}
	return merged;
}
