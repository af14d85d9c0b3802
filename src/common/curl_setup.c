/*-------------------------------------------------------------------------
 *
 * curl_setup.c
 *		The options every libcurl handle of pg_polyglot gets: timeouts,
 *		protocols, interrupts, TLS and basic authentication, from a
 *		server's and user mapping's options.
 *
 * The stores' connection files (elastic_connection.c, http_connection.c)
 * own their handles and set the rest (headers, callbacks for the body).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "pg_polyglot.h"
#include "common/curl_setup.h"

/*
 * libcurl's global state, counted by libcurl: each store that holds curl
 * handles takes a reference before its first handle (*held says it has
 * one) and gives it back at backend exit, after its handles are freed
 * (its connection cache's at_exit).  Acquiring ereports on failure.
 */
void
polyglot_curl_acquire(bool *held)
{
	if (*held)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl")));
	*held = true;
}

void
polyglot_curl_release(bool *held)
{
	if (!*held)
		return;
	curl_global_cleanup();
	*held = false;
}

/*
 * libcurl's progress callback: aborts the transfer when a query cancel,
 * statement timeout or termination is pending, so that they need not wait
 * for io_timeout.  Only reads the flags (other interrupts, such as cache
 * invalidation catch-up, do not stop a request); the caller then runs
 * CHECK_FOR_INTERRUPTS().
 */
static int
progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			curl_off_t ultotal, curl_off_t ulnow)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

/*
 * Sets on curl what the options say, and errbuf (CURL_ERROR_SIZE bytes,
 * living as long as the handle) for its error messages.  libcurl copies
 * the strings given; nothing here allocates in PostgreSQL's memory.
 */
void
polyglot_curl_setup(CURL *curl, const PolyglotConnOptions *opts, char *errbuf)
{
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) opts->connect_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) opts->io_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "pg_polyglot");
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* TLS (an https url): libcurl verifies the server by default */
	if (opts->tls_ca_file)
	{
		/* these authorities only, not the system's directory beside them */
		curl_easy_setopt(curl, CURLOPT_CAINFO, opts->tls_ca_file);
		curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	}
	if (opts->tls_cert_file)
	{
		curl_easy_setopt(curl, CURLOPT_SSLCERT, opts->tls_cert_file);
		curl_easy_setopt(curl, CURLOPT_SSLKEY, opts->tls_key_file ?
						 opts->tls_key_file : opts->tls_cert_file);
		if (opts->tls_key_password)
			curl_easy_setopt(curl, CURLOPT_KEYPASSWD, opts->tls_key_password);
	}
	if (!opts->tls_verify)
	{
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (opts->user || opts->password)
	{
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		curl_easy_setopt(curl, CURLOPT_USERNAME, opts->user ? opts->user : "");
		curl_easy_setopt(curl, CURLOPT_PASSWORD, opts->password ? opts->password : "");
	}
}
