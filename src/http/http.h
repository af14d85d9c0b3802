/*-------------------------------------------------------------------------
 *
 * http.h
 *		Declarations shared by the files of the polyglot_http store: a
 *		webhook sink that sync routes POST change events to.
 *
 * A polyglot_http server is a URL that receives batches of change events
 * (src/core/event.c) as JSON, signed with the user mapping's secret.  It
 * holds no tables: foreign tables of its wrapper are refused.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_HTTP_H
#define POLYGLOT_HTTP_H

#include "foreign/foreign.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "common/conncache.h"

typedef struct HttpConnOptions
{
	PolyglotConnOptions common;
	const char *url;			/* where batches go */
	const char *headers;		/* a JSON object of extra headers, or NULL */
	const char *secret;			/* signs each request, from the user mapping */
	const char *token;			/* Authorization: Bearer, from the user mapping */
} HttpConnOptions;

/* A cached connection: base.conn is the libcurl handle's owner */
typedef struct HttpConn
{
	PolyglotConnEntry base;
	char		servername[NAMEDATALEN];
} HttpConn;

typedef struct HttpResponse
{
	long		status;			/* HTTP status */
	char	   *body;			/* palloc'd, NUL-terminated, at most
								 * HTTP_KEPT_BODY bytes of it */
	char	   *retry_after;	/* the Retry-After header, or NULL */
} HttpResponse;

/* How much of a response body is kept: enough for an error's detail */
#define HTTP_KEPT_BODY	4096

/* in http_option.c */
extern const PolyglotOption polyglot_http_options[];
extern char *polyglot_http_endpoint(ForeignServer *server);
extern const PolyglotRouteOption polyglot_http_route_options[];
extern void polyglot_http_check_route(PolyglotRouteCheck *check);
extern void polyglot_http_check_options(List *options, Oid catalog);
extern void polyglot_http_get_options(ForeignServer *server, UserMapping *user,
									  HttpConnOptions *opts);

/* in http_connection.c */
extern HttpConn *polyglot_http_get_connection(ForeignServer *server, UserMapping *user);
extern void polyglot_http_post(HttpConn *conn, const char *body, size_t len,
							   HttpResponse *response);
extern Jsonb *polyglot_http_ping(ForeignServer *server, UserMapping *user);

#endif							/* POLYGLOT_HTTP_H */
