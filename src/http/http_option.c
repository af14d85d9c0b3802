/*-------------------------------------------------------------------------
 *
 * http_option.c
 *		Options of the polyglot_http foreign-data wrapper (webhook sinks)
 *		and its validator.
 *
 * Server: url (http or https, where batches are POSTed), headers (a JSON
 *         object of extra request headers), connect_timeout, io_timeout;
 *         for https, tls_verify, tls_ca_file, tls_cert_file and
 *         tls_key_file (a client certificate: superusers).
 * User mapping: secret (signs every request), token (Authorization:
 *         Bearer), user and password (basic authentication),
 *         tls_key_password.
 * Foreign tables: none; the wrapper holds no tables.
 * Sync routes: the options every store has (columns, exclude, where,
 *         name, include, embed...), nothing of their own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "http/http.h"

static void check_url(const char *name, const char *value);
static void check_headers(const char *name, const char *value);

const PolyglotOption polyglot_http_options[] = {
	{.name = "url", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = check_url},
	{.name = "headers", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = check_headers},
	{.name = "connect_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "io_timeout", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_DURATION},
	{.name = "tls_verify", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_BOOL},
	{.name = "tls_ca_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "tls_cert_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "tls_key_file", .catalog = ForeignServerRelationId, .type = POLYGLOT_OPT_STRING, .check = polyglot_check_superuser_option},
	{.name = "secret", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "token", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "user", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = "tls_key_password", .catalog = UserMappingRelationId, .type = POLYGLOT_OPT_STRING, .secret = true},
	{.name = NULL}
};

/* An http or https URL, without credentials in it */
static void
check_url(const char *name, const char *value)
{
	CURLU	   *h = curl_url();
	CURLUcode	rc;
	char	   *scheme = NULL;
	char	   *userpart = NULL;
	const char *problem = NULL;
	bool		userpart_given = false;

	if (h == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	rc = curl_url_set(h, CURLUPART_URL, value, 0);
	if (rc != CURLUE_OK)
		problem = curl_url_strerror(rc);
	else
	{
		curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
		curl_url_get(h, CURLUPART_USER, &userpart, 0);
		if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
			problem = "The scheme must be http or https";
		else if (userpart != NULL)
		{
			problem = "Credentials go in a user mapping (user, password or token), not in the URL";
			userpart_given = true;
		}
	}
	curl_free(scheme);
	curl_free(userpart);
	curl_url_cleanup(h);
	/* a URL that may hold credentials is not shown: the message may be logged */
	if (problem && (userpart_given || strchr(value, '@')))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid URL in option \"%s\"", name),
				 errdetail("%s.", problem)));
	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid URL \"%s\" in option \"%s\"", value, name),
				 errdetail("%s.", problem),
				 errhint("Give the URL batches are posted to, such as 'https://hooks.example.com/orders'.")));
}

/* Headers pg_polyglot sets itself, or that carry secrets (and X-Polyglot-*) */
static const char *const reserved_headers[] = {
	"content-type", "content-length", "host", "authorization", "transfer-encoding",
	"connection", "expect", "x-polyglot-timestamp", "x-polyglot-signature",
	"proxy-authorization", "cookie", NULL
};

/*
 * headers: a JSON object whose values are strings; names are HTTP tokens,
 * values hold no line breaks, none is one that pg_polyglot sets (or a
 * secret's: Authorization comes from the user mapping's token).
 */
static void
check_headers(const char *name, const char *value)
{
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *header = NULL;

	/* text that is no JSON fails here, with the parser's message */
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(value)));
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"%s\" must be a JSON object of header names and values", name),
				 errhint("For example: headers '{\"X-Team\": \"search\"}'.")));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			const char *p;
			const char *const *r;

			header = pnstrdup(v.val.string.val, v.val.string.len);
			for (p = header; *p; p++)
				if (!isalnum((unsigned char) *p) && !strchr("!#$%&'*+-.^_`|~", *p))
					break;
			if (*header == '\0' || *p != '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid header name \"%s\" in option \"%s\"", header, name)));
			for (r = reserved_headers; *r; r++)
				if (pg_strcasecmp(header, *r) == 0 || pg_strncasecmp(header, "x-polyglot-", 11) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("header \"%s\" cannot be set in option \"%s\"", header, name),
							 pg_strcasecmp(header, "authorization") == 0 ||
							 pg_strcasecmp(header, "proxy-authorization") == 0 ||
							 pg_strcasecmp(header, "cookie") == 0 ?
							 errhint("A credential goes in the user mapping: option \"token\" (a bearer token), or \"user\" and \"password\".") :
							 errhint("pg_polyglot sets this header itself.")));
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("the value of header \"%s\" in option \"%s\" must be a string",
								header, name)));
			if (memchr(v.val.string.val, '\r', v.val.string.len) ||
				memchr(v.val.string.val, '\n', v.val.string.len))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("the value of header \"%s\" in option \"%s\" holds a line break",
								header, name)));
		}
	}
}

/* Checks across options: a server needs its url; TLS options an https one */
void
polyglot_http_check_options(List *options, Oid catalog)
{
	const char *url;

	if (catalog == ForeignTableRelationId || catalog == AttributeRelationId)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("polyglot_http servers hold no tables"),
				 errdetail("A polyglot_http server is a webhook that sync routes post change events to."),
				 errhint("Use polyglot.sync(table, server) to send a table's changes there.")));
	/* a token becomes a header line: no line breaks in it */
	if (catalog == UserMappingRelationId)
	{
		const char *token = polyglot_option_string(options, "token", NULL);

		if (token && strpbrk(token, "\r\n"))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
					 errmsg("option \"token\" holds a line break")));
		/* a request authenticates one way */
		if (token && (polyglot_option_string(options, "user", NULL) ||
					  polyglot_option_string(options, "password", NULL)))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("options \"token\" and \"user\"/\"password\" cannot be combined"),
					 errhint("Use either a bearer token or basic authentication.")));
	}
	if (catalog != ForeignServerRelationId)
		return;
	url = polyglot_option_string(options, "url", NULL);
	if (url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a polyglot_http server needs option \"url\""),
				 errhint("Give the URL batches are posted to: OPTIONS (url 'https://hooks.example.com/orders').")));
	polyglot_check_tls_options(options, catalog, false);
	if ((polyglot_option_find(options, "tls_verify") ||
		 polyglot_option_find(options, "tls_ca_file") ||
		 polyglot_option_find(options, "tls_cert_file")) &&
		pg_strncasecmp(url, "https://", 8) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("TLS options need an https url")));
}

/*
 * Fills opts from a server and an optional user mapping.  Strings point
 * into the option lists, which live as long as server and user.
 */
void
polyglot_http_get_options(ForeignServer *server, UserMapping *user, HttpConnOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	polyglot_get_conn_options(server, user, &opts->common);
	opts->url = polyglot_option_string(server->options, "url", NULL);
	opts->headers = polyglot_option_string(server->options, "headers", NULL);
	if (user)
	{
		opts->secret = polyglot_option_string(user->options, "secret", NULL);
		opts->token = polyglot_option_string(user->options, "token", NULL);
	}
	if (opts->url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no option \"url\"", server->servername)));
}

/* Where a server posts: its url */
char *
polyglot_http_endpoint(ForeignServer *server)
{
	return pstrdup(polyglot_option_string(server->options, "url", ""));
}

/* ---------------------------------------------------------------- route options */

const PolyglotRouteOption polyglot_http_route_options[] = {
	{.name = NULL}
};

/* An HTTP route has only the options every store has */
void
polyglot_http_check_route(PolyglotRouteCheck *check)
{
}
