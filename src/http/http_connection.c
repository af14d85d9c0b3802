/*-------------------------------------------------------------------------
 *
 * http_connection.c
 *		Requests to polyglot_http servers (webhooks) through libcurl: one
 *		kept-alive easy handle per server and user mapping, cached per
 *		backend; signing; ping.
 *
 * Everything libcurl touches is malloc'd and owned by an HttpHandle, freed
 * by http_disconnect().  Callbacks run inside libcurl and never palloc or
 * ereport: what they collect goes to malloc'd buffers, copied into the
 * caller's memory context once the transfer is over.  Signing uses
 * OpenSSL's one-shot HMAC, which allocates nothing PostgreSQL tracks: the
 * delivery worker posts with no transaction (and no resource owner) open.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "common/curl_setup.h"
#include "http/http.h"

typedef struct HttpHandle
{
	CURL	   *curl;
	char	  **headers;		/* fixed request headers, "Name: value" */
	int			nheaders;
	char	   *secret;			/* signs requests, or NULL */
	char		errbuf[CURL_ERROR_SIZE];
	char	   *body;			/* the first HTTP_KEPT_BODY bytes of a response */
	size_t		body_len;
	char		retry_after[64];
} HttpHandle;

static void http_disconnect(void *handle);
static void http_at_exit(void);

static PolyglotConnCache http_cache = {
	.store = "pg_polyglot HTTP connections",
	.entry_size = sizeof(HttpConn),
	.disconnect = http_disconnect,
	.at_exit = http_at_exit,
};

static bool curl_initialized = false;	/* this store holds a libcurl reference */

#define http_handle(conn) ((HttpHandle *) (conn)->base.conn)

static void
http_disconnect(void *p)
{
	HttpHandle *h = (HttpHandle *) p;
	int			i;

	if (h == NULL)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	for (i = 0; i < h->nheaders; i++)
		free(h->headers[i]);
	free(h->headers);
	if (h->secret)
	{
		explicit_bzero(h->secret, strlen(h->secret));
		free(h->secret);
	}
	free(h->body);
	free(h);
}

static void
http_at_exit(void)
{
	polyglot_curl_release(&curl_initialized);
}

/* Keeps the start of a response body, reads (and drops) the rest */
static size_t
http_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpHandle *h = (HttpHandle *) userdata;
	size_t		n = size * nmemb;
	size_t		keep = Min(n, HTTP_KEPT_BODY - h->body_len);

	if (keep > 0)
	{
		memcpy(h->body + h->body_len, ptr, keep);
		h->body_len += keep;
		h->body[h->body_len] = '\0';
	}
	return n;
}

/* Notes a Retry-After header */
static size_t
http_header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpHandle *h = (HttpHandle *) userdata;
	size_t		n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) - 1 && pg_strncasecmp(ptr, name, sizeof(name) - 1) == 0)
	{
		const char *v = ptr + sizeof(name) - 1;
		size_t		len = n - (sizeof(name) - 1);

		while (len > 0 && (*v == ' ' || *v == '\t'))
			v++, len--;
		while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
			len--;
		len = Min(len, sizeof(h->retry_after) - 1);
		memcpy(h->retry_after, v, len);
		h->retry_after[len] = '\0';
	}
	return n;
}

/* strdup that ereports; the caller frees the handle on error */
static char *
handle_strdup(HttpHandle *h, const char *s)
{
	char	   *copy = strdup(s);

	if (copy == NULL)
	{
		http_disconnect(h);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	return copy;
}

/* Adds a fixed header to a handle */
static void
add_header(HttpHandle *h, const char *line)
{
	h->headers[h->nheaders] = handle_strdup(h, line);
	h->nheaders++;
}

static HttpHandle *
http_connect(const HttpConnOptions *opts)
{
	HttpHandle *h;
	int			nextra = 0;
	Jsonb	   *extra = NULL;

	polyglot_curl_acquire(&curl_initialized);
	if (opts->headers)
	{
		extra = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(opts->headers)));
		nextra = JB_ROOT_COUNT(extra);
	}

	h = calloc(1, sizeof(HttpHandle));
	if (h == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	h->curl = curl_easy_init();
	h->headers = calloc(nextra + 4, sizeof(char *));
	h->body = malloc(HTTP_KEPT_BODY + 1);
	if (h->curl == NULL || h->headers == NULL || h->body == NULL)
	{
		http_disconnect(h);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	add_header(h, "Content-Type: application/json");
	add_header(h, "Expect:");	/* no 100-continue round trip before a body */
	if (opts->token)
		add_header(h, psprintf("Authorization: Bearer %s", opts->token));
	if (extra)
	{
		JsonbIterator *it = JsonbIteratorInit(&extra->root);
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *name = NULL;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				name = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE && v.type == jbvString && name)
				add_header(h, psprintf("%s: %.*s", name, v.val.string.len, v.val.string.val));
		}
	}
	if (opts->secret)
		h->secret = handle_strdup(h, opts->secret);

	polyglot_curl_setup(h->curl, &opts->common, h->errbuf);
	curl_easy_setopt(h->curl, CURLOPT_URL, opts->url);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, h);
	/* a redirected POST is not followed: the status says where to look */
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
	return h;
}

/*
 * The cached connection for a server and optional user mapping; nothing
 * goes over the network here.
 */
HttpConn *
polyglot_http_get_connection(ForeignServer *server, UserMapping *user)
{
	HttpConn   *conn = (HttpConn *) polyglot_conncache_entry(&http_cache, server, user);

	if (conn->base.conn == NULL)
	{
		HttpConnOptions opts;

		polyglot_http_get_options(server, user, &opts);
		strlcpy(conn->servername, server->servername, sizeof(conn->servername));
		conn->base.conn = http_connect(&opts);
	}
	return conn;
}

/*
 * X-Polyglot-Signature: "v1=" and the hex HMAC-SHA256, keyed by the
 * secret, of the timestamp, a dot and the body: the receiver recomputes it
 * and also refuses old timestamps, so a captured request cannot be
 * replayed later.
 */
static char *
signature(const char *secret, const char *timestamp, const char *body, size_t len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t		tslen = strlen(timestamp);
	unsigned char *signed_text = palloc(tslen + 1 + len);
	StringInfoData hex;
	unsigned int i;

	/* HMAC() at once: OpenSSL 3 deprecates the HMAC_CTX functions */
	memcpy(signed_text, timestamp, tslen);
	signed_text[tslen] = '.';
	memcpy(signed_text + tslen + 1, body, len);
	if (HMAC(EVP_sha256(), secret, (int) strlen(secret), signed_text, tslen + 1 + len,
			 mac, &maclen) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not sign a request with HMAC-SHA256")));
	pfree(signed_text);
	initStringInfo(&hex);
	appendStringInfoString(&hex, "X-Polyglot-Signature: v1=");
	for (i = 0; i < maclen; i++)
		appendStringInfo(&hex, "%02x", mac[i]);
	return hex.data;
}

/*
 * POSTs body and fills response, for any HTTP status: the caller decides
 * what a status means.  ereports when no response came: the server could
 * not be reached (08001), or the request failed or timed out after
 * connecting (08006).  The body must not hold secrets: errors show none
 * of it.
 */
void
polyglot_http_post(HttpConn *conn, const char *body, size_t len, HttpResponse *response)
{
	HttpHandle *h = http_handle(conn);
	struct curl_slist *volatile list = NULL;	/* freed in PG_CATCH */
	struct curl_slist *next;
	CURLcode	rc;
	char		timestamp[32];
	int			i;
	bool		oom = false;
	bool		held_off = false;
	char	   *sig_line = NULL;

	memset(response, 0, sizeof(*response));
	snprintf(timestamp, sizeof(timestamp), "%lld", (long long) time(NULL));
	/* before anything is malloc'd: it may ereport */
	if (h->secret)
		sig_line = signature(h->secret, timestamp, body, len);
	for (i = 0; i < h->nheaders && !oom; i++)
	{
		next = curl_slist_append(list, h->headers[i]);
		oom = next == NULL;
		list = next ? next : list;
	}
	if (h->secret && !oom)
	{
		char	   *ts_line = psprintf("X-Polyglot-Timestamp: %s", timestamp);

		next = curl_slist_append(list, ts_line);
		oom = next == NULL;
		list = next ? next : list;
		if (!oom)
		{
			next = curl_slist_append(list, sig_line);
			oom = next == NULL;
			list = next ? next : list;
		}
	}
	if (oom)
	{
		curl_slist_free_all(list);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}

	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
	for (;;)
	{
		h->body_len = 0;
		h->body[0] = '\0';
		h->retry_after[0] = '\0';
		h->errbuf[0] = '\0';
		rc = curl_easy_perform(h->curl);
		if (rc != CURLE_ABORTED_BY_CALLBACK || held_off)
			break;

		/*
		 * A cancel ends the request here; one that PostgreSQL holds off
		 * does not, and the request goes again without the callback.
		 */
		PG_TRY();
		{
			CHECK_FOR_INTERRUPTS();
		}
		PG_CATCH();
		{
			curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
			curl_slist_free_all(list);
			PG_RE_THROW();
		}
		PG_END_TRY();
		held_off = true;
		curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 1L);
	}
	if (held_off)
		curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(list);

	if (rc != CURLE_OK)
	{
		curl_off_t	connect_time = 0;
		bool		connected;
		char	   *why = pstrdup(h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));

		connected = !(rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
					  rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
					  rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
					  (rc == CURLE_OPERATION_TIMEDOUT &&
					   curl_easy_getinfo(h->curl, CURLINFO_CONNECT_TIME_T, &connect_time) == CURLE_OK &&
					   connect_time == 0));
		if (!connected)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to HTTP server \"%s\"", conn->servername),
					 errdetail_internal("%s.", why)));
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("POST to HTTP server \"%s\" failed", conn->servername),
				 errdetail_internal("%s.", why)));
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &response->status);
	response->body = pnstrdup(h->body, h->body_len);
	if (h->retry_after[0])
		response->retry_after = pstrdup(h->retry_after);
}

/*
 * polyglot.ping() of an HTTP server: a HEAD request to its url.  Any HTTP
 * answer counts (a webhook may answer HEAD with 405): the server is there.
 */
Jsonb *
polyglot_http_ping(ForeignServer *server, UserMapping *user)
{
	HttpConn   *conn = polyglot_http_get_connection(server, user);
	HttpHandle *h = http_handle(conn);
	instr_time	start;
	CURLcode	rc;
	long		status = 0;
	double		latency;

	INSTR_TIME_SET_CURRENT(start);
	h->body_len = 0;
	h->errbuf[0] = '\0';
	curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
	rc = curl_easy_perform(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_NOBODY, 0L);
	latency = polyglot_elapsed_ms(start);
	CHECK_FOR_INTERRUPTS();
	if (rc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to HTTP server \"%s\"", server->servername),
				 errdetail_internal("%s.", h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc))));
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	return polyglot_ping_result("http", server->servername, latency,
								psprintf("HTTP %ld", status), NULL);
}
