/*-------------------------------------------------------------------------
 *
 * curl_setup.h
 *		What the stores that speak HTTP (Elasticsearch/OpenSearch,
 *		webhooks) set alike on a libcurl handle.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLYGLOT_CURL_SETUP_H
#define POLYGLOT_CURL_SETUP_H

#include <curl/curl.h>

#include "pg_polyglot.h"

extern void polyglot_curl_acquire(bool *held);
extern void polyglot_curl_release(bool *held);
extern void polyglot_curl_setup(CURL *curl, const PolyglotConnOptions *opts, char *errbuf);

#endif							/* POLYGLOT_CURL_SETUP_H */
