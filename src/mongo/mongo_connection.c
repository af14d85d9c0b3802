/*-------------------------------------------------------------------------
 *
 * mongo_connection.c
 *		Connections to MongoDB through libmongoc: one single-threaded
 *		mongoc_client_t per server and user mapping, cached per backend,
 *		with the timeouts of the server options, credentials from the user
 *		mapping, error reporting, and ping.
 *
 * libmongoc is initialised on first use and cleaned up at backend exit.
 * Its own log output is routed to the server log at DEBUG1, since it would
 * otherwise write to the backend's stderr.  A client that failed to reach
 * its server is destroyed, not kept: a single-threaded client would refuse
 * to retry the server for its five-second cooldown.
 *
 * Every client's TCP streams come from mongo_stream.c, whose waits a
 * cancel or a termination interrupts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/ipc.h"
#include "utils/jsonb.h"

#include "pg_polyglot.h"
#include "mongo/mongo.h"

static void mongo_disconnect(void *handle);
static void mongo_at_exit(void);

static PolyglotConnCache mongo_cache = {
	.store = "pg_polyglot MongoDB connections",
	.entry_size = sizeof(MongoConn),
	.disconnect = mongo_disconnect,
	.at_exit = mongo_at_exit,
};

static bool mongoc_initialized = false;

/*
 * Frees a client.  While the process exits, the client first forgets its
 * server sessions (mongoc_client_reset), so that mongoc_client_destroy()
 * does not end them on the server: that would select a server, and with a
 * topology older than heartbeatFrequencyMS scan it first, all in proc_exit.
 * The server expires forgotten sessions itself.
 */
static void
mongo_disconnect(void *handle)
{
	if (proc_exit_inprogress)
		mongoc_client_reset((mongoc_client_t *) handle);
	mongoc_client_destroy((mongoc_client_t *) handle);
}

static void
mongo_at_exit(void)
{
	if (mongoc_initialized)
	{
		mongoc_cleanup();
		mongoc_initialized = false;
	}
}

/* libmongoc's log messages, at DEBUG1 only: they must never throw. */
static void
mongo_log_handler(mongoc_log_level_t level, const char *domain,
				  const char *message, void *user_data)
{
	if (level <= MONGOC_LOG_LEVEL_WARNING)
		elog(DEBUG1, "libmongoc %s: %s", domain, message);
}

/* Initialises libmongoc once per process. */
void
polyglot_mongo_ensure_initialized(void)
{
	if (mongoc_initialized)
		return;
	mongoc_log_set_handler(mongo_log_handler, NULL);
	mongoc_init();
	mongoc_initialized = true;
}

static mongoc_client_t *
mongo_connect(MongoConn *conn, const MongoConnOptions *opts)
{
	mongoc_uri_t *uri;
	mongoc_client_t *client;
	bson_error_t error;

	uri = mongoc_uri_new_with_error(opts->uri, &error);
	if (uri == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid MongoDB connection string for server \"%s\"",
						conn->servername),
				 errdetail_internal("%s", error.message)));

	/*
	 * Credentials are set through the API, not pasted into the string, so
	 * any character in them is safe.
	 */
	if (opts->common.user)
		mongoc_uri_set_username(uri, opts->common.user);
	if (opts->common.password)
		mongoc_uri_set_password(uri, opts->common.password);

	/* explicit server options win; else the uri's; else our defaults */
	if (opts->common.connect_timeout_set || !mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
									   opts->common.connect_timeout_ms);
	if (opts->common.connect_timeout_set || !mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
									   opts->common.connect_timeout_ms);
	if (opts->common.io_timeout_set || !mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
									   opts->common.io_timeout_ms);
	/* TLS from the server's options (the uri may ask for it too) */
	if (opts->common.tls)
		mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLS, true);
	if (opts->common.tls_ca_file)
		mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, opts->common.tls_ca_file);
	if (opts->common.tls_cert_file)
		mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE,
									  opts->common.tls_cert_file);
	if (opts->common.tls_key_password)
		mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD,
									  opts->common.tls_key_password);
	if (!opts->common.tls_verify)
	{
		mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, true);
		mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, true);
	}
	if (!mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_APPNAME, NULL))
		mongoc_uri_set_appname(uri, "pg_polyglot");

	client = mongoc_client_new_from_uri_with_error(uri, &error);
	if (client)
		polyglot_mongo_stream_setup(client, uri);
	mongoc_uri_destroy(uri);
	if (client == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not create a MongoDB client for server \"%s\"",
						conn->servername),
				 errdetail_internal("%s", error.message)));
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	return client;
}

/*
 * Returns the cached connection for a server and optional user mapping,
 * creating the client if needed.  libmongoc connects lazily: the first
 * command reaches the server and reports connection failures.
 */
MongoConn *
polyglot_mongo_get_connection(ForeignServer *server, UserMapping *user)
{
	MongoConn  *conn;

	polyglot_mongo_ensure_initialized();
	conn = (MongoConn *) polyglot_conncache_entry(&mongo_cache, server, user);
	if (conn->base.conn == NULL)
	{
		MongoConnOptions opts;

		polyglot_mongo_get_options(server, user, &opts);
		strlcpy(conn->servername, server->servername, sizeof(conn->servername));
		strlcpy(conn->database, opts.database ? opts.database : "",
				sizeof(conn->database));
		conn->base.conn = mongo_connect(conn, &opts);
		conn->flavor_known = false;
	}
	return conn;
}

/*
 * Learns what kind of server a connection reaches, once per connection:
 * FerretDB 1.x has no decimal128 (it drops the connection on one).
 */
void
polyglot_mongo_read_flavor(MongoConn *conn)
{
	bson_t	   *cmd;
	bson_t		reply;
	bson_error_t error;
	bson_iter_t iter;

	if (conn->flavor_known)
		return;
	cmd = BCON_NEW("buildInfo", BCON_INT32(1));
	if (!mongoc_client_command_simple(mongo_client(conn), "admin", cmd, NULL, &reply, &error))
	{
		bson_destroy(cmd);
		bson_destroy(&reply);
		polyglot_mongo_report_error(conn, &error, "buildInfo");
	}
	bson_destroy(cmd);
	conn->ferretdb = false;
	conn->has_decimal128 = true;
	strlcpy(conn->version, "unknown", sizeof(conn->version));
	if (bson_iter_init_find(&iter, &reply, "version") && BSON_ITER_HOLDS_UTF8(&iter))
		strlcpy(conn->version, bson_iter_utf8(&iter, NULL), sizeof(conn->version));
	if (bson_iter_init_find(&iter, &reply, "ferretdbVersion") && BSON_ITER_HOLDS_UTF8(&iter))
	{
		const char *v = bson_iter_utf8(&iter, NULL);

		conn->ferretdb = true;
		conn->has_decimal128 = !(strncmp(v, "v1.", 3) == 0 || strncmp(v, "1.", 2) == 0);
	}
	bson_destroy(&reply);
	conn->flavor_known = true;
}

/*
 * The polyglot_bson_append_datum flags of the documents sent to conn's
 * server: no decimal128 where it has none, and no NaN to FerretDB, which
 * closes the connection on one.  The flavor must be read.
 */
int
polyglot_mongo_bson_flags(const MongoConn *conn)
{
	Assert(conn->flavor_known);
	return (conn->has_decimal128 ? 0 : POLYGLOT_BSON_NO_DECIMAL128) |
		(conn->ferretdb ? POLYGLOT_BSON_NO_NAN : 0);
}

static bool
is_connection_error(const bson_error_t *error)
{
	return error->domain == MONGOC_ERROR_SERVER_SELECTION ||
		error->domain == MONGOC_ERROR_STREAM ||
		(error->domain == MONGOC_ERROR_CLIENT &&
		 error->code == MONGOC_ERROR_CLIENT_AUTHENTICATE);
}

/*
 * Reports an error; a connection or authentication failure also drops the
 * client: the pinned one if pin is given (from its entry, if it is still
 * there), else the entry's.
 */
static void
report_error(MongoConn *conn, const PolyglotConnPin *pin, const bson_error_t *error,
			 const char *what)
{
	char		message[BSON_ERROR_BUFFER_SIZE];
	uint32_t	domain = error->domain;
	uint32_t	code = error->code;

	strlcpy(message, error->message, sizeof(message));

	if (is_connection_error(error))
	{
		bool		auth = (domain == MONGOC_ERROR_CLIENT &&
							code == MONGOC_ERROR_CLIENT_AUTHENTICATE);

		if (pin)
			polyglot_conncache_discard_pinned(pin);
		else
			polyglot_conncache_discard(&mongo_cache, &conn->base);

		/* the driver's socket timeout (io_timeout) on a made connection */
		if (domain == MONGOC_ERROR_STREAM && code == MONGOC_ERROR_STREAM_SOCKET &&
			(strstr(message, "timeout") != NULL || strstr(message, "timed out") != NULL))
			polyglot_io_timed_out = true;

		/*
		 * An operation that a cancel or termination cut short (see
		 * mongo_stream.c) failed as a lost connection: report the cancel.
		 */
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(auth ? ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
						 : ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to MongoDB server \"%s\"", conn->servername),
				 errdetail_internal("%s", message),
				 auth ? errhint("Check the user and password options of the user mapping.") : 0));
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("MongoDB server \"%s\" returned an error for %s",
					conn->servername, what),
			 errdetail_internal("%s (domain %u, code %u)", message, domain, code)));
}

/*
 * The one way MongoDB errors are reported: the store's message goes in
 * errdetail.  A connection or authentication failure also drops the
 * client.  Never returns.
 */
void
polyglot_mongo_report_error(MongoConn *conn, const bson_error_t *error, const char *what)
{
	report_error(conn, NULL, error, what);
	pg_unreachable();
}

/*
 * polyglot_mongo_report_error() for an operation on a pinned client, which may no
 * longer be its entry's: a connection failure drops that client from the
 * entry only if it is still there.  Never returns.
 */
void
polyglot_mongo_report_pinned_error(MongoConn *conn, const PolyglotConnPin *pin,
						  const bson_error_t *error, const char *what)
{
	report_error(conn, pin, error, what);
	pg_unreachable();
}

/*
 * Frees a cursor and a collection handle (either may be NULL), then
 * releases the pinned client they belong to: what a scan, a write or a
 * sink's key scan holds until its end or its error.
 */
void
polyglot_mongo_release_pinned(mongoc_cursor_t **cursor, mongoc_collection_t **coll,
							  PolyglotConnPin *pin)
{
	if (cursor && *cursor)
		mongoc_cursor_destroy(*cursor);
	if (cursor)
		*cursor = NULL;
	if (*coll)
		mongoc_collection_destroy(*coll);
	*coll = NULL;
	polyglot_conncache_unpin(pin);
}

/*
 * polyglot.ping() for a MongoDB server: a ping command round trip, and the
 * server's version from buildInfo.  FerretDB is reported as its own flavor.
 */
Jsonb *
polyglot_mongo_ping(ForeignServer *server, UserMapping *user)
{
	MongoConn  *conn = polyglot_mongo_get_connection(server, user);
	bson_t	   *cmd;
	bson_t		reply;
	bson_error_t error;
	instr_time	start;
	double		latency;
	bool		ok;

	cmd = BCON_NEW("ping", BCON_INT32(1));
	INSTR_TIME_SET_CURRENT(start);
	ok = mongoc_client_command_simple(mongo_client(conn), "admin", cmd, NULL, &reply, &error);
	latency = polyglot_elapsed_ms(start);
	bson_destroy(cmd);
	bson_destroy(&reply);
	if (!ok)
		polyglot_mongo_report_error(conn, &error, "ping");

	/* version and flavor: buildInfo, read once per connection */
	polyglot_mongo_read_flavor(conn);
	return polyglot_ping_result("mongo", server->servername, latency, conn->version,
								conn->ferretdb ? "ferretdb" : "mongodb");
}
