/*-------------------------------------------------------------------------
 *
 * elastic_connection.c
 *		HTTP connections to Elasticsearch and OpenSearch through libcurl:
 *		one kept-alive easy handle per server and user mapping, cached per
 *		backend, failover across the node URLs of the server, error
 *		reporting, and ping with flavour detection.
 *
 * This is the only file that talks to libcurl for requests (pg_net keeps
 * libcurl in one file the same way).  Everything libcurl touches is
 * malloc'd and owned by an ElasticHandle, freed by elastic_disconnect().
 * Callbacks run inside libcurl and therefore never palloc or ereport: the
 * response is collected in a malloc'd buffer and copied into the caller's
 * memory context once curl_easy_perform() has returned.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "common/curl_setup.h"
#include "elastic/elastic.h"

/* A response larger than this is refused rather than buffered. */
#define ELASTIC_MAX_RESPONSE_BYTES	((size_t) 512 * 1024 * 1024)

typedef struct ElasticBuffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		too_large;
	bool		elastic_product;
} ElasticBuffer;

/*
 * What a started transfer came to, when another request needed the handle
 * before the transfer's pin asked for it: kept for that pin
 */
/* answers kept at once on a handle: one per scan of a join, at most */
#define ELASTIC_KEPT_MAX 8

typedef struct ElasticAnswer
{
	const PolyglotConnPin *owner;	/* whose, or NULL: none kept */
	bool		done;			/* the transfer ran to an end, with rc */
	CURLcode	rc;
	bool		connect_failure;	/* rc: the node was not reached */
	long		status;
	ElasticBuffer buf;			/* its body */
	char	   *url;			/* malloc'd, or NULL */
	char		errbuf[CURL_ERROR_SIZE];
} ElasticAnswer;

typedef struct ElasticHandle
{
	CURL	   *curl;
	struct curl_slist *headers;
	int			nnodes;
	int			current;		/* node tried first: the last that answered */
	char	  **nodes;			/* base URLs, without trailing slash */
	char		errbuf[CURL_ERROR_SIZE];
	ElasticBuffer buf;
	CURLM	   *multi;			/* for a started request, or NULL */
	CURLSH	   *share;			/* the connections of curl and multi, or NULL */
	bool		started;		/* curl is in multi, a request under way */
	const PolyglotConnPin *owner;	/* the pin of the started request */
	ElasticAnswer kept[ELASTIC_KEPT_MAX];	/* transfers set aside, for their pins */
	int			connect_timeout_ms;
	int			io_timeout_ms;	/* of a started transfer: from complete()'s wait */
} ElasticHandle;

static void elastic_disconnect(void *handle);
static void drop_kept(ElasticHandle *h);
static ElasticAnswer *kept_for(ElasticHandle *h, const PolyglotConnPin *pin);
static void drop_answer(ElasticAnswer *a);

static void elastic_at_exit(void);

static PolyglotConnCache elastic_cache = {
	.store = "pg_polyglot Elasticsearch connections",
	.entry_size = sizeof(ElasticConn),
	.disconnect = elastic_disconnect,
	.at_exit = elastic_at_exit,
};

static bool curl_initialized = false;	/* this store holds a libcurl reference */

#define elastic_handle(conn) ((ElasticHandle *) (conn)->base.conn)

static void
elastic_disconnect(void *p)
{
	ElasticHandle *h = (ElasticHandle *) p;
	int			i;

	if (h == NULL)
		return;
	if (h->multi && h->started)
		curl_multi_remove_handle(h->multi, h->curl);
	drop_kept(h);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->curl)
		curl_easy_cleanup(h->curl);
	/* after every handle that used it: the connections it keeps close now */
	if (h->share)
		curl_share_cleanup(h->share);
	curl_slist_free_all(h->headers);
	for (i = 0; i < h->nnodes; i++)
		free(h->nodes[i]);
	free(h->nodes);
	free(h->buf.data);
	free(h);
}

static void
elastic_at_exit(void)
{
	polyglot_curl_release(&curl_initialized);
}

/* libcurl write callback: append to the malloc'd buffer; 0 aborts. */
static size_t
elastic_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	ElasticBuffer *buf = (ElasticBuffer *) userdata;
	size_t		n = size * nmemb;

	if (buf->len + n + 1 > buf->cap)
	{
		size_t		newcap = buf->cap ? buf->cap : 8192;
		char	   *newdata;

		while (newcap < buf->len + n + 1)
			newcap *= 2;
		if (newcap > ELASTIC_MAX_RESPONSE_BYTES)
		{
			buf->too_large = true;
			return 0;
		}
		newdata = realloc(buf->data, newcap);
		if (newdata == NULL)
			return 0;
		buf->data = newdata;
		buf->cap = newcap;
	}
	memcpy(buf->data + buf->len, ptr, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return n;
}

/* libcurl header callback: notes the X-elastic-product header. */
static size_t
elastic_header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	ElasticBuffer *buf = (ElasticBuffer *) userdata;
	size_t		n = size * nmemb;
	static const char name[] = "x-elastic-product:";

	if (n >= sizeof(name) - 1 && pg_strncasecmp(ptr, name, sizeof(name) - 1) == 0)
		buf->elastic_product = true;
	return n;
}

static ElasticHandle *
elastic_connect(ElasticConn *conn, const ElasticConnOptions *opts)
{
	ElasticHandle *h;
	List	   *urls = polyglot_elastic_split_urls(opts->url);
	ListCell   *cell;
	bool		oom = false;

	polyglot_curl_acquire(&curl_initialized);

	h = calloc(1, sizeof(ElasticHandle));
	if (h == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	h->nodes = calloc(list_length(urls), sizeof(char *));
	h->curl = curl_easy_init();
	oom = (h->nodes == NULL || h->curl == NULL);
	foreach(cell, urls)
	{
		if (oom)
			break;
		h->nodes[h->nnodes] = strdup((const char *) lfirst(cell));
		if (h->nodes[h->nnodes] == NULL)
			oom = true;
		else
			h->nnodes++;
	}
	if (!oom)
	{
		struct curl_slist *l;
		struct curl_slist *l2;

		l = curl_slist_append(NULL, "Content-Type: application/json");
		/* no 100-continue round trip before a large body (a _bulk) */
		if (l && (l2 = curl_slist_append(l, "Expect:")) == NULL)
		{
			curl_slist_free_all(l);
			l = NULL;
		}
		if (l && opts->api_key)
		{
			char	   *line = psprintf("Authorization: ApiKey %s", opts->api_key);

			l2 = curl_slist_append(l, line);

			pfree(line);
			if (l2 == NULL)
			{
				curl_slist_free_all(l);
				l = NULL;
			}
		}
		h->headers = l;
		oom = (l == NULL);
	}
	if (oom)
	{
		elastic_disconnect(h);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}

	polyglot_curl_setup(h->curl, &opts->common, h->errbuf);
	h->connect_timeout_ms = opts->common.connect_timeout_ms;
	h->io_timeout_ms = opts->common.io_timeout_ms;

	/*
	 * One cache of connections for the requests made at once (through
	 * curl_easy_perform's own multi handle) and the ones started (h->multi):
	 * without it each keeps its own, the first request started opens a
	 * second connection to the server, and it has only begun to connect
	 * when polyglot_elastic_request_start() returns.  The easy handle is in
	 * one of the two at a time, in this one backend: the share needs no
	 * locks.  Without the share (libcurl older than 7.57), two connections.
	 */
	h->share = curl_share_init();
	if (h->share &&
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
	{
		curl_share_cleanup(h->share);
		h->share = NULL;
	}
	if (h->share)
		curl_easy_setopt(h->curl, CURLOPT_SHARE, h->share);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, elastic_write_cb);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &h->buf);
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, elastic_header_cb);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &h->buf);
	return h;
}

/*
 * Returns the cached connection for a server and optional user mapping,
 * creating the handle if needed.  Nothing goes over the network here.
 */
ElasticConn *
polyglot_elastic_get_connection(ForeignServer *server, UserMapping *user)
{
	ElasticConn *conn;

	conn = (ElasticConn *) polyglot_conncache_entry(&elastic_cache, server, user);
	if (conn->base.conn == NULL)
	{
		ElasticConnOptions opts;

		polyglot_elastic_get_options(server, user, &opts);
		strlcpy(conn->servername, server->servername, sizeof(conn->servername));
		conn->flavor = 0;
		conn->base.conn = elastic_connect(conn, &opts);
	}
	return conn;
}

/* A TLS session that could not be set up */
static bool
is_tls_failure(CURLcode rc)
{
	return rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
		rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE ||
		rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ENGINE_NOTFOUND ||
		rc == CURLE_SSL_ENGINE_SETFAILED || rc == CURLE_SSL_CRL_BADFILE ||
		rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_USE_SSL_FAILED;
}

/*
 * A failure to reach a node, worth trying the next one for.  A timeout is
 * one only when it came before the node was reached: no TCP connection
 * made and no byte of the request sent.  A connection reused from an
 * earlier request has no connect time of its own (libcurl reports 0), and
 * a request that went out on it is one the node has: its timeout is the
 * node's slowness, which another node would not mend, and is reported as
 * such.
 */
static bool
is_connect_failure(CURLcode rc, CURL *curl)
{
	curl_off_t	connect_time = 0;
	long		request_size = 0;

	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		rc == CURLE_COULDNT_RESOLVE_PROXY)
		return true;
	/* no TLS session: handshake refused, certificate not trusted, bad files */
	if (is_tls_failure(rc))
		return true;
	if (rc == CURLE_OPERATION_TIMEDOUT &&
		curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connect_time) == CURLE_OK &&
		connect_time == 0 &&
		curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &request_size) == CURLE_OK &&
		request_size == 0)
		return true;
	return false;
}

/*
 * Sends one request and fills response, for any HTTP status: the caller
 * decides what a status means (polyglot_elastic_report_error() for the usual
 * "anything >= 400 is an error").  Tries each node of the server once,
 * starting with the last one that answered, when a node cannot be reached;
 * ereports when none answers or the request fails after connecting.
 * body may be NULL.  The response body is palloc'd in the current context.
 */
static void fill_response(ElasticBuffer *buf, long status, ElasticResponse *response,
						  char *url);
pg_noreturn static void report_failure(ElasticConn *conn, int nnodes, CURLcode rc, bool connect_failure,
						   bool too_large, const char *errtext, const char *method,
						   const char *path, const char *url);
static void request_on(ElasticConn *conn, ElasticHandle *h, const char *method,
					   const char *path, const char *body, size_t bodylen,
					   ElasticResponse *response);
static void set_aside_transfer(ElasticHandle *h);
static void cancel_transfer(ElasticHandle *h);

void
polyglot_elastic_request(ElasticConn *conn, const char *method, const char *path,
				const char *body, size_t bodylen, ElasticResponse *response)
{
	request_on(conn, elastic_handle(conn), method, path, body, bodylen, response);
}

/* polyglot_elastic_request() on a given handle of the connection: its own, or a pinned one */
static void
request_on(ElasticConn *conn, ElasticHandle *h, const char *method, const char *path,
		   const char *body, size_t bodylen, ElasticResponse *response)
{
	CURL	   *curl = h->curl;
	CURLcode	rc = CURLE_OK;
	char	   *url = NULL;
	int			attempt;
	bool		held_off = false;
	long		status = 0;

	memset(response, 0, sizeof(*response));
	if (h->started)
		set_aside_transfer(h);

	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body)
	{
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) bodylen);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	}
	else
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	/* HTTPGET resets the request method: set it again */
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);

	for (attempt = 0; attempt < h->nnodes; attempt++)
	{
		int			node = (h->current + attempt) % h->nnodes;

		if (url)
			pfree(url);
		url = psprintf("%s%s", h->nodes[node], path);
		curl_easy_setopt(curl, CURLOPT_URL, url);

		h->buf.len = 0;
		h->buf.too_large = false;
		h->buf.elastic_product = false;
		h->errbuf[0] = '\0';

		rc = curl_easy_perform(curl);
		if (rc == CURLE_ABORTED_BY_CALLBACK && !held_off)
		{
			/*
			 * A cancel ends the query here.  One that PostgreSQL holds off
			 * does not: the request goes again, this time without the
			 * callback, which would only abort it again.
			 */
			CHECK_FOR_INTERRUPTS();
			held_off = true;
			curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 1L);
			attempt--;
			continue;
		}
		if (rc == CURLE_OK)
		{
			h->current = node;
			break;
		}
		if (!is_connect_failure(rc, curl))
			break;
	}

	if (held_off)
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	if (rc != CURLE_OK)
		report_failure(conn, h->nnodes, rc, is_connect_failure(rc, curl), h->buf.too_large,
					   h->errbuf, method, path, url);

	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	fill_response(&h->buf, status, response, url);
}

/*
 * Reports the failure rc of a request method path sent to url (errtext:
 * libcurl's message, or empty): a node that could not be reached (after
 * the other nodes, for request_on), or a request that failed on its way.
 */
static void
report_failure(ElasticConn *conn, int nnodes, CURLcode rc, bool connect_failure, bool too_large,
			   const char *errtext, const char *method, const char *path, const char *url)
{
	char		errmsg_buf[CURL_ERROR_SIZE + 64];

	if (rc == CURLE_OPERATION_TIMEDOUT && !connect_failure)
		polyglot_io_timed_out = true;

	snprintf(errmsg_buf, sizeof(errmsg_buf), "%s",
			 errtext[0] ? errtext : curl_easy_strerror(rc));
	if (too_large)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("response of server \"%s\" to %s %s is too large",
						conn->servername, method, path),
				 errdetail("Responses are limited to %zu bytes.",
						   ELASTIC_MAX_RESPONSE_BYTES)));
	if (connect_failure)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to Elasticsearch server \"%s\"",
						conn->servername),
				 errdetail_internal("%s (%s%s).", errmsg_buf, url,
									nnodes > 1 ? ", and no other node answered" : ""),
				 is_tls_failure(rc) ?
				 errhint("Check the server's TLS options: tls_ca_file (the authority that signed the node's certificate), tls_cert_file and tls_key_file (the client certificate it asks for).") : 0));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("request %s %s to Elasticsearch server \"%s\" failed",
					method, path, conn->servername),
			 errdetail_internal("%s (%s).", errmsg_buf, url)));
}

/* The response of a transfer that completed with status, its body in buf */
static void
fill_response(ElasticBuffer *buf, long status, ElasticResponse *response, char *url)
{
	response->status = status;
	response->len = buf->len;
	response->body = palloc(buf->len + 1);
	if (buf->len > 0)
		memcpy(response->body, buf->data, buf->len);
	response->body[buf->len] = '\0';
	response->elastic_product = buf->elastic_product;
	response->url = url;

	/* do not keep a large buffer around between requests */
	if (buf->cap > 1024 * 1024)
	{
		free(buf->data);
		buf->data = NULL;
		buf->cap = 0;
		buf->len = 0;
	}
}

/*
 * A request in two steps, so that the caller can work while the server
 * does: polyglot_elastic_request_start() sends the request (to the node
 * that answered last; on a new connection once connected, within
 * connect_timeout) and returns; polyglot_elastic_request_complete() waits
 * for the answer.  The request belongs to the handle it started on, which
 * start() pins into *pin: if the connection's options change in between,
 * later requests get a new handle and this one is still answered on its
 * own.  One request at a time per handle: a request made meanwhile on the
 * same handle, synchronous or started into another pin (two scans of one
 * server, a scan and a write), first waits for the transfer and keeps its
 * answer for complete() (set_aside_transfer); the handle knows which pin
 * its transfer and the answer it keeps are for, so that complete() never
 * takes another request's answer for its own.  A node that cannot be
 * reached is found in complete(), which then makes the whole request again
 * the synchronous way, over the other nodes; a request that reached its
 * node and failed there (a timeout, a connection lost) is reported by
 * complete() as request_on() would, and not sent again.  io_timeout
 * bounds complete()'s wait for the answer, not the time since start(): an
 * answer taken late (a cursor read with pauses) is read as it came.  A
 * node that stops answering on a connection kept from earlier requests is
 * such a failure too: the statement fails, and the next one, connecting
 * again, goes on to the other nodes.  The body and *pin must stay allocated, at the same
 * addresses, until complete() or cancel().
 */
void
polyglot_elastic_request_start(ElasticConn *conn, PolyglotConnPin *pin, const char *method,
					  const char *path, const char *body, size_t bodylen)
{
	ElasticHandle *h = elastic_handle(conn);
	ElasticAnswer *a;
	int			running = 0;
	instr_time	begun;

	if (h->started)
		set_aside_transfer(h);
	if ((a = kept_for(h, pin)) != NULL)
		drop_answer(a);
	if (h->multi == NULL && (h->multi = curl_multi_init()) == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) bodylen);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h->curl, CURLOPT_URL, psprintf("%s%s", h->nodes[h->current], path));
	h->buf.len = 0;
	h->buf.too_large = false;
	h->buf.elastic_product = false;
	h->errbuf[0] = '\0';

	/*
	 * No io_timeout of libcurl's while started: it would run from now, and
	 * the answer may be taken much later (a cursor read with pauses), when
	 * libcurl would call it timed out before reading what has come.
	 * finish_transfer() times the wait for it instead; the synchronous
	 * requests get theirs back when the transfer leaves the multi handle.
	 */
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, 0L);
	if (curl_multi_add_handle(h->multi, h->curl) != CURLM_OK)
	{
		curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long) h->io_timeout_ms);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not start a request to Elasticsearch server \"%s\"",
						conn->servername)));
	}
	h->started = true;
	polyglot_conncache_pin(&conn->base, pin);
	h->owner = pin;

	/*
	 * Until the request is out: at once on a connection kept from an
	 * earlier request, else once connected.  Bounded by connect_timeout
	 * (libcurl ends the transfer then, and complete() reports it); a
	 * cancel aborts the transfer through the progress callback, and
	 * complete() then sees it.  Never ereports after the pin is taken.
	 */
	INSTR_TIME_SET_CURRENT(begun);
	for (;;)
	{
		long		sent = 0;
		double		left;

		if (curl_multi_perform(h->multi, &running) != CURLM_OK || !running)
			break;
		if (curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK || sent > 0)
			break;
		left = (h->connect_timeout_ms > 0 ? h->connect_timeout_ms : 10000) -
			polyglot_elapsed_ms(begun);
		if (left <= 0)
			break;
		(void) curl_multi_poll(h->multi, NULL, 0, (int) Min(left + 1, 100), NULL);
	}
}

/*
 * Runs the transfer under way on h to its end, and takes it out of the
 * multi handle: *done says whether it ended (with *rc), else (libcurl's
 * own failure) it is to be made again.  The wait is bounded by io_timeout
 * from here, not from start(): an answer that came while nobody waited
 * for it is read, however late; one that does not come within io_timeout
 * of waiting ends the transfer as timed out (and closes its connection).
 */
static void
finish_transfer(ElasticHandle *h, bool *done, CURLcode *rc)
{
	int			running = 1;
	CURLMsg    *msg;
	int			queued;
	bool		timed_out = false;
	instr_time	begun;

	*done = false;
	*rc = CURLE_OK;
	INSTR_TIME_SET_CURRENT(begun);
	while (running)
	{
		long		wait_ms = 1000;

		if (curl_multi_perform(h->multi, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		if (h->io_timeout_ms > 0)
		{
			double		left = h->io_timeout_ms - polyglot_elapsed_ms(begun);

			if (left <= 0)
			{
				timed_out = true;
				break;
			}
			wait_ms = Min(wait_ms, (long) left + 1);
		}
		(void) curl_multi_poll(h->multi, NULL, 0, (int) wait_ms, NULL);
		CHECK_FOR_INTERRUPTS();
	}
	while ((msg = curl_multi_info_read(h->multi, &queued)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->curl && !timed_out)
		{
			*rc = msg->data.result;
			*done = true;
		}
	if (timed_out)
	{
		snprintf(h->errbuf, CURL_ERROR_SIZE,
				 "Operation timed out: no answer within %d milliseconds of waiting for it",
				 h->io_timeout_ms);
		*rc = CURLE_OPERATION_TIMEDOUT;
		*done = true;
	}
	curl_multi_remove_handle(h->multi, h->curl);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long) h->io_timeout_ms);
	h->started = false;
	h->owner = NULL;
}

/*
 * A started transfer that did not succeed (done, rc): a request that
 * reached its node and failed there is reported as request_on() would,
 * and not sent again (within io_timeout of the wait for it); one not run to
 * its end, whose node was not reached, or stopped by a cancel that is
 * held off, is made again the synchronous way, over the other nodes.
 */
static void
retry_or_report(ElasticConn *conn, ElasticHandle *h, bool done, CURLcode rc,
				bool connect_failure, bool too_large, const char *errtext,
				const char *method, const char *path, const char *body, size_t bodylen,
				const char *url, ElasticResponse *response)
{
	if (done && rc == CURLE_ABORTED_BY_CALLBACK)
		CHECK_FOR_INTERRUPTS();
	else if (done && !connect_failure)
		report_failure(conn, h->nnodes, rc, false, too_large, errtext, method, path, url);
	request_on(conn, h, method, path, body, bodylen, response);
}

/* Forgets an answer kept, if any.  Never ereports. */
static void
drop_answer(ElasticAnswer *a)
{
	free(a->buf.data);
	free(a->url);
	memset(a, 0, sizeof(*a));
}

/* Forgets every answer kept on h.  Never ereports. */
static void
drop_kept(ElasticHandle *h)
{
	int			i;

	for (i = 0; i < ELASTIC_KEPT_MAX; i++)
		drop_answer(&h->kept[i]);
}

/* The answer kept on h for pin, or NULL */
static ElasticAnswer *
kept_for(ElasticHandle *h, const PolyglotConnPin *pin)
{
	int			i;

	for (i = 0; i < ELASTIC_KEPT_MAX; i++)
		if (h->kept[i].owner == pin)
			return &h->kept[i];
	return NULL;
}

/*
 * Before another request on h: the transfer under way, started into
 * another pin, is run to its end and its answer kept for that pin's
 * complete(), so that the request is not sent twice and its connection
 * not lost.  A pin has one request at a time, so at most one answer; with
 * ELASTIC_KEPT_MAX answers kept already (as many scans of one server in
 * one query, waiting), the transfer is cancelled, and complete() makes its
 * request again.
 */
static void
set_aside_transfer(ElasticHandle *h)
{
	ElasticAnswer *a = kept_for(h, NULL);
	const PolyglotConnPin *owner = h->owner;
	char	   *url = NULL;

	if (a == NULL)
	{
		cancel_transfer(h);
		return;
	}
	finish_transfer(h, &a->done, &a->rc);
	a->connect_failure = a->done && is_connect_failure(a->rc, h->curl);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_getinfo(h->curl, CURLINFO_EFFECTIVE_URL, &url);
	a->url = url ? strdup(url) : NULL;
	memcpy(a->errbuf, h->errbuf, sizeof(a->errbuf));
	/* the body moves: the handle's next transfer starts a buffer of its own */
	a->buf = h->buf;
	memset(&h->buf, 0, sizeof(h->buf));
	a->owner = owner;
}

/*
 * Waits for the answer to the request started into *pin and releases the
 * pin.  On an error the pin is still held: polyglot_elastic_request_cancel()
 * releases it.
 */
void
polyglot_elastic_request_complete(ElasticConn *conn, PolyglotConnPin *pin, const char *method,
						 const char *path, const char *body, size_t bodylen,
						 ElasticResponse *response)
{
	ElasticHandle *h = (ElasticHandle *) pin->handle;
	ElasticAnswer *a;
	bool		done;
	CURLcode	rc;
	char	   *url = NULL;

	memset(response, 0, sizeof(*response));
	if (h == NULL)
		elog(ERROR, "pg_polyglot: no request was started");
	if ((a = kept_for(h, pin)) != NULL)
	{
		/* set aside for another request: its answer, or how it failed */
		char		errtext[CURL_ERROR_SIZE];
		bool		too_large = a->buf.too_large;
		bool		connect_failure = a->connect_failure;

		done = a->done;
		rc = a->rc;
		url = a->url ? pstrdup(a->url) : psprintf("%s%s", h->nodes[h->current], path);
		if (done && rc == CURLE_OK)
			fill_response(&a->buf, a->status, response, url);
		memcpy(errtext, a->errbuf, sizeof(errtext));
		drop_answer(a);
		if (!(done && rc == CURLE_OK))
			retry_or_report(conn, h, done, rc, connect_failure, too_large, errtext,
							method, path, body, bodylen, url, response);
	}
	else if (!h->started || h->owner != pin)
		/* another request on the handle dropped this one: make it again */
		request_on(conn, h, method, path, body, bodylen, response);
	else
	{
		finish_transfer(h, &done, &rc);
		curl_easy_getinfo(h->curl, CURLINFO_EFFECTIVE_URL, &url);
		url = url ? pstrdup(url) : psprintf("%s%s", h->nodes[h->current], path);
		if (done && rc == CURLE_OK)
		{
			long		status = 0;

			curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
			fill_response(&h->buf, status, response, url);
		}
		else
			retry_or_report(conn, h, done, rc, done && is_connect_failure(rc, h->curl),
							h->buf.too_large, h->errbuf, method, path, body, bodylen,
							url, response);
	}
	polyglot_conncache_unpin(pin);
}

/*
 * Stops a transfer under way on a handle.  An answer that has come in full
 * ends the transfer first, and its connection stays for the next request;
 * one still awaited or read in part closes its connection.  Never ereports.
 */
static void
cancel_transfer(ElasticHandle *h)
{
	int			running;

	(void) curl_multi_perform(h->multi, &running);
	curl_multi_remove_handle(h->multi, h->curl);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long) h->io_timeout_ms);
	h->started = false;
	h->owner = NULL;
}

/*
 * Forgets the request started into *pin, if any, and releases the pin:
 * its transfer is stopped (and its connection closed, unless its answer
 * has come) when still under way, or its answer kept for it dropped,
 * leaving alone another request the handle has started since.  Never
 * ereports; safe on a pin that holds nothing, and in a memory context
 * callback during an abort.
 */
void
polyglot_elastic_request_cancel(PolyglotConnPin *pin)
{
	ElasticHandle *h = (ElasticHandle *) pin->handle;
	ElasticAnswer *a;

	if (h == NULL)
		return;
	if (h->started && h->owner == pin)
		cancel_transfer(h);
	if ((a = kept_for(h, pin)) != NULL)
		drop_answer(a);
	polyglot_conncache_unpin(pin);
}

/* The value at key in a jsonb object container, when there is one of that type */
static bool
json_member(JsonbContainer *container, const char *key, enum jbvType type, JsonbValue *v)
{
	return container != NULL && JsonContainerIsObject(container) &&
		getKeyJsonValueFromContainer(container, key, strlen(key), v) && v->type == type;
}

/* The string value at key in a jsonb object container, or NULL (also for a container that is not an object). */
char *
polyglot_elastic_json_string(JsonbContainer *container, const char *key)
{
	JsonbValue	v;

	if (!json_member(container, key, jbvString, &v))
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/* The object or array value at key in a jsonb object container, or NULL. */
JsonbContainer *
polyglot_elastic_json_object(JsonbContainer *container, const char *key)
{
	JsonbValue	v;

	if (!json_member(container, key, jbvBinary, &v))
		return NULL;
	return v.val.binary.data;
}

/* The integer value at key in a jsonb object container, or default_value */
int
polyglot_elastic_json_int(JsonbContainer *container, const char *key, int default_value)
{
	JsonbValue	v;

	if (container == NULL || !JsonContainerIsObject(container) ||
		!getKeyJsonValueFromContainer(container, key, strlen(key), &v) ||
		v.type != jbvNumeric)
		return default_value;
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v.val.numeric)));
}

/*
 * "type: reason" of an error object as the servers write them
 * ({"type": ..., "reason": ...}), or NULL without a reason.
 */
char *
polyglot_elastic_error_text(JsonbContainer *error)
{
	char	   *type = polyglot_elastic_json_string(error, "type");
	char	   *reason = polyglot_elastic_json_string(error, "reason");

	if (reason == NULL)
		return NULL;
	return psprintf("%s: %s", type ? type : "error", reason);
}

/*
 * Parses text as jsonb, or returns NULL when it is not JSON: for error
 * bodies, where anything may come back, and ids that may not be JSON.
 */
Jsonb *
polyglot_elastic_try_parse_json(const char *text)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Jsonb	   *volatile jb = NULL;

	PG_TRY();
	{
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		jb = NULL;
	}
	PG_END_TRY();
	return jb;
}

/*
 * The one way Elasticsearch errors are reported: an HTTP error status, with
 * the server's error type and reason in errdetail (or the start of the body
 * when it is not the usual error object).  Never returns.
 */
void
polyglot_elastic_report_error(ElasticConn *conn, const ElasticResponse *response,
					 const char *what)
{
	char	   *detail = NULL;
	Jsonb	   *jb = NULL;
	int			sqlstate;

	/* the usual {"error": {"type": ..., "reason": ...}, "status": ...} */
	if (response->len > 0 && response->body[0] == '{')
		jb = polyglot_elastic_try_parse_json(response->body);
	if (jb)
	{
		JsonbContainer *error = polyglot_elastic_json_object(&jb->root, "error");
		JsonbContainer *causes = polyglot_elastic_json_object(error, "root_cause");
		JsonbValue *cause;

		/* the first root cause says more than "all shards failed" */
		if (causes && JsonContainerIsArray(causes) &&
			(cause = getIthJsonbValueFromContainer(causes, 0)) != NULL &&
			cause->type == jbvBinary)
			detail = polyglot_elastic_error_text(cause->val.binary.data);
		if (detail == NULL)
			detail = polyglot_elastic_error_text(error);
		if (detail == NULL)
			detail = polyglot_elastic_json_string(&jb->root, "error");
	}
	if (detail == NULL)
		detail = pnstrdup(response->body, Min(response->len, 1000));

	if (response->status == 401 || response->status == 403)
		sqlstate = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
	else if (response->status == 404)
		sqlstate = ERRCODE_FDW_TABLE_NOT_FOUND;
	else
		sqlstate = ERRCODE_FDW_ERROR;

	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("Elasticsearch server \"%s\" returned HTTP status %ld for %s",
					conn->servername, response->status, what),
			 errdetail_internal("%s", detail),
			 response->status == 401 ?
			 errhint("Check the user and password, or api_key, options of the user mapping.") : 0));
}

typedef struct ParseErrorContext
{
	ElasticConn *conn;
	const char *what;
} ParseErrorContext;

static void
parse_error_callback(void *arg)
{
	ParseErrorContext *ctx = (ParseErrorContext *) arg;

	errcontext("parsing the response of Elasticsearch server \"%s\" to %s",
			   ctx->conn->servername, ctx->what);
}

/*
 * Parses a response body as jsonb.  A body that is not JSON ereports with a
 * context line naming the server and the request.
 */
Jsonb *
polyglot_elastic_parse_response(ElasticConn *conn, const ElasticResponse *response,
					   const char *what)
{
	ErrorContextCallback errcallback;
	ParseErrorContext ctx = {conn, what};
	Jsonb	   *result;

	errcallback.callback = parse_error_callback;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(response->body)));
	error_context_stack = errcallback.previous;
	return result;
}

/* The first string value under a key named "version", at any depth. */
static char *
find_version(Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		next_is_version = false;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			next_is_version = (v.val.string.len == 7 &&
							   strncmp(v.val.string.val, "version", 7) == 0);
		else if (tok == WJB_VALUE && next_is_version && v.type == jbvString)
			return pnstrdup(v.val.string.val, v.val.string.len);
		else
			next_is_version = false;
	}
	return NULL;
}

/*
 * polyglot.ping() for an Elasticsearch or OpenSearch server.  The version
 * comes from the nodes info API, which both flavours serve (the root
 * endpoint is missing from some distributions).  Elasticsearch marks every
 * response with X-elastic-product; OpenSearch says "opensearch" as the
 * distribution at its root endpoint.
 */
Jsonb *
polyglot_elastic_ping(ForeignServer *server, UserMapping *user)
{
	ElasticConn *conn = polyglot_elastic_get_connection(server, user);
	ElasticResponse response;
	instr_time	start;
	double		latency;
	char	   *version;
	const char *flavor = "elasticsearch";

	INSTR_TIME_SET_CURRENT(start);
	polyglot_elastic_request(conn, "GET", "/_nodes/_local?filter_path=nodes.*.version",
					NULL, 0, &response);
	latency = polyglot_elapsed_ms(start);
	if (response.status >= 400)
		polyglot_elastic_report_error(conn, &response, "GET /_nodes/_local");
	version = find_version(polyglot_elastic_parse_response(conn, &response, "GET /_nodes/_local"));

	if (!response.elastic_product)
	{
		ElasticResponse root;

		polyglot_elastic_request(conn, "GET", "/", NULL, 0, &root);
		if (root.status == 200)
		{
			Jsonb	   *jb = polyglot_elastic_parse_response(conn, &root, "GET /");
			char	   *dist = polyglot_elastic_json_string(polyglot_elastic_json_object(&jb->root, "version"),
												   "distribution");

			if (dist && strcmp(dist, "opensearch") == 0)
				flavor = "opensearch";
		}
	}

	return polyglot_ping_result("elastic", server->servername, latency, version, flavor);
}

/*
 * Is the server OpenSearch rather than Elasticsearch?  The two differ in
 * their point-in-time APIs.  Asked once per connection (GET /):
 * Elasticsearch marks its responses with X-elastic-product, OpenSearch
 * names itself as the distribution.
 */
bool
polyglot_elastic_is_opensearch(ElasticConn *conn)
{
	if (conn->flavor == 0)
	{
		ElasticResponse root;
		char		flavor = 'e';

		/* the header is on every answer, also an error (some builds lack GET /) */
		polyglot_elastic_request(conn, "GET", "/", NULL, 0, &root);
		if (!root.elastic_product)
		{
			Jsonb	   *jb;
			char	   *dist;

			if (root.status >= 400)
				polyglot_elastic_report_error(conn, &root, "GET /");
			jb = polyglot_elastic_parse_response(conn, &root, "GET /");
			dist = polyglot_elastic_json_string(polyglot_elastic_json_object(&jb->root, "version"), "distribution");
			if (dist && strcmp(dist, "opensearch") == 0)
				flavor = 'o';
		}
		conn->flavor = flavor;
	}
	return conn->flavor == 'o';
}
