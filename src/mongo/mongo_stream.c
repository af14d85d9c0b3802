/*-------------------------------------------------------------------------
 *
 * mongo_stream.c
 *		The TCP streams of the MongoDB clients: libmongoc's socket waits
 *		replaced by waits on the process latch.
 *
 * libmongoc waits for its sockets in poll(), and goes back to waiting when
 * a signal interrupts it, until connectTimeoutMS or socketTimeoutMS.  A
 * query cancel or a termination request (pg_cancel_backend,
 * statement_timeout, pg_ctl stop -m fast) would wait that long with the
 * server frozen.  So every client gets a stream initiator that connects
 * its own non-blocking socket and hands libmongoc a stream over it whose
 * every wait is WaitLatchOrSocket(): a pending cancel or termination makes
 * the wait give up at once, the operation fails with a stream error, and
 * polyglot_mongo_report_error() drops the client and serves the interrupt.
 *
 * Nothing here may ereport or longjmp: these functions run inside
 * libmongoc, which must get its error back and unwind itself.  While the
 * backend exits, no wait happens at all (libmongoc's farewell to the
 * server, endSessions, is not worth a wait on a hung server).
 *
 * A connection that fails is not reported by returning NULL: libmongoc
 * 1.23 calls the initiator under its topology lock when a scan's hello to a
 * known server fails and it tries that server once more
 * (_mongoc_topology_scanner_cb -> mongoc_topology_scanner_scan), and a NULL
 * there makes it take that lock again (_mongoc_topology_scanner_setup_err_cb
 * -> mc_tpld_modify_begin): a self-deadlock.  The initiator returns a failed
 * stream instead, which the scan's next poll reports as an error, outside
 * the lock, like any connection that failed in the background.
 *
 * Clients connecting with TLS or to Unix-domain sockets keep libmongoc's
 * own streams, and its waits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"

#include "pg_polyglot.h"
#include "mongo/mongo.h"

/* a type number of our own, so that mongoc_stream_poll() sees one kind */
#define POLYGLOT_MONGO_STREAM_TYPE	0x706c79

/* the longest sleep of a poll over several streams between interrupt checks */
#define POLL_SLICE_MS 100

typedef struct PolyglotMongoStream
{
	mongoc_stream_t vtable;		/* must be first */
	int			fd;				/* -1 once closed, or if it never connected */
	int			last_errno;		/* of the last failed operation */
	bool		refused;		/* never connected: the server refused */
} PolyglotMongoStream;

/* A wait that would outlast a pending cancel or termination gives up. */
static bool
must_give_up(void)
{
	return proc_exit_inprogress ||
		(InterruptPending && (QueryCancelPending || ProcDiePending));
}

/*
 * A wake-up of the latch consumed by a wait that was not for us (a commit
 * waking the worker, say) is given back when the wait ends.
 */
static void
give_back_latch(bool woken)
{
	if (woken)
		SetLatch(MyLatch);
}

/* Microseconds of the monotonic clock when a wait of timeout_msec ends; -1: never */
static int64
expiry(int32_t timeout_msec)
{
	if (timeout_msec < 0)
		return -1;
	return bson_get_monotonic_time() + (int64) timeout_msec * 1000;
}

/*
 * Waits until fd is ready for events (WL_SOCKET_READABLE and/or
 * WL_SOCKET_WRITEABLE), the wait expires (expire_at as from expiry(); 0
 * checks without waiting), or an interrupt must be served.  Returns the
 * WL_SOCKET_* events that occurred; 0 with errno ETIMEDOUT or EINTR.
 */
static int
wait_socket(int fd, int events, int64 expire_at)
{
	bool		woken = false;

	for (;;)
	{
		long		timeout = -1;
		int			rc;

		if (must_give_up())
		{
			give_back_latch(woken);
			errno = EINTR;
			return 0;
		}
		if (expire_at >= 0)
		{
			timeout = (long) ((expire_at - bson_get_monotonic_time()) / 1000);
			if (timeout < 0)
				timeout = 0;
		}
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | events | WL_EXIT_ON_PM_DEATH |
							   (timeout >= 0 ? WL_TIMEOUT : 0),
							   fd, timeout, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			woken = true;
		}
		if (rc & events)
		{
			give_back_latch(woken);
			return rc & events;
		}
		if (timeout == 0 || (rc & WL_TIMEOUT))
		{
			give_back_latch(woken);
			errno = ETIMEDOUT;
			return 0;
		}
	}
}

static void
stream_close_fd(PolyglotMongoStream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static void
stream_destroy(mongoc_stream_t *stream)
{
	PolyglotMongoStream *s = (PolyglotMongoStream *) stream;

	stream_close_fd(s);
	bson_free(s);
}

static int
stream_close(mongoc_stream_t *stream)
{
	stream_close_fd((PolyglotMongoStream *) stream);
	return 0;
}

static int
stream_flush(mongoc_stream_t *stream)
{
	return 0;
}

/* Where a transfer is in an iovec: the segment, and the bytes done in it */
typedef struct IovCursor
{
	mongoc_iovec_t *iov;
	size_t		count;
	size_t		cur;
	size_t		off;
} IovCursor;

/* The rest of the first segment not done yet and its length, or NULL when all are */
static char *
iov_rest(IovCursor *c, size_t *len)
{
	while (c->cur < c->count && c->iov[c->cur].iov_len == c->off)
	{
		c->cur++;
		c->off = 0;
	}
	if (c->cur == c->count)
		return NULL;
	*len = c->iov[c->cur].iov_len - c->off;
	return (char *) c->iov[c->cur].iov_base + c->off;
}

/*
 * Moves bytes between the socket and iov (sending when writing, else
 * receiving) until iov is done or, reading, at least min_bytes came, waiting
 * for the socket within timeout_msec (0: no waiting).  Returns the bytes
 * moved; when it stopped short, s->last_errno says why (ECONNRESET and
 * *closed when the server closed the connection).
 */
static ssize_t
transfer(PolyglotMongoStream *s, mongoc_iovec_t *iov, size_t iovcnt, bool writing,
		 size_t min_bytes, int32_t timeout_msec, bool *closed)
{
	IovCursor	c = {iov, iovcnt, 0, 0};
	int64		expire_at = expiry(timeout_msec);
	ssize_t		total = 0;
	char	   *rest;
	size_t		len;

	s->last_errno = 0;
	*closed = false;
	while ((rest = iov_rest(&c, &len)) != NULL &&
		   !(total > 0 && (size_t) total >= min_bytes))
	{
		ssize_t		n;

		if (s->fd < 0)
		{
			s->last_errno = EBADF;
			break;
		}
		n = writing ? send(s->fd, rest, len, MSG_NOSIGNAL) : recv(s->fd, rest, len, 0);
		if (n > 0)
		{
			total += n;
			c.off += n;
			continue;
		}
		if (n == 0)
		{
			s->last_errno = writing ? EPIPE : ECONNRESET;
			*closed = !writing;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
		{
			if (timeout_msec != 0 &&
				wait_socket(s->fd, writing ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE,
							expire_at) != 0)
				continue;
			s->last_errno = timeout_msec == 0 ? EAGAIN : errno;
		}
		else
			s->last_errno = errno;
		break;
	}
	return total;
}

/*
 * Sends every byte of iov within timeout_msec (0: what goes without
 * waiting).  Returns the bytes sent, or -1 with nothing sent.
 */
static ssize_t
stream_writev(mongoc_stream_t *stream, mongoc_iovec_t *iov, size_t iovcnt,
			  int32_t timeout_msec)
{
	PolyglotMongoStream *s = (PolyglotMongoStream *) stream;
	bool		closed;
	ssize_t		total = transfer(s, iov, iovcnt, true, SIZE_MAX, timeout_msec, &closed);

	if (total == 0 && s->last_errno != 0)
	{
		errno = s->last_errno;
		return -1;
	}
	return total;
}

/*
 * Reads into iov at least min_bytes within timeout_msec (0: what is there
 * without waiting).  Returns the bytes read, 0 when the server closed the
 * connection before any came, or -1.
 */
static ssize_t
stream_readv(mongoc_stream_t *stream, mongoc_iovec_t *iov, size_t iovcnt,
			 size_t min_bytes, int32_t timeout_msec)
{
	PolyglotMongoStream *s = (PolyglotMongoStream *) stream;
	bool		closed;
	ssize_t		total = transfer(s, iov, iovcnt, false, min_bytes, timeout_msec, &closed);

	if (s->last_errno == 0)
		return total;
	if (closed && total == 0)
		return 0;
	errno = s->last_errno;
	return -1;
}

static int
stream_setsockopt(mongoc_stream_t *stream, int level, int optname,
				  void *optval, mongoc_socklen_t optlen)
{
	PolyglotMongoStream *s = (PolyglotMongoStream *) stream;

	return s->fd < 0 ? -1 : setsockopt(s->fd, level, optname, optval, optlen);
}

/* Did the server close the connection?  Checks without waiting. */
static bool
stream_check_closed(mongoc_stream_t *stream)
{
	PolyglotMongoStream *s = (PolyglotMongoStream *) stream;
	char		c;
	ssize_t		n;

	if (s->fd < 0)
		return true;
	n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return false;
	return n == 0 || !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static bool
stream_timed_out(mongoc_stream_t *stream)
{
	return ((PolyglotMongoStream *) stream)->last_errno == ETIMEDOUT;
}

/* libmongoc's asynchronous steps try again later on EAGAIN only */
static bool
stream_should_retry(mongoc_stream_t *stream)
{
	int			e = ((PolyglotMongoStream *) stream)->last_errno;

	return e == EAGAIN || e == EWOULDBLOCK;
}

static int
to_wl_events(int poll_events)
{
	return ((poll_events & POLLIN) ? WL_SOCKET_READABLE : 0) |
		((poll_events & POLLOUT) ? WL_SOCKET_WRITEABLE : 0);
}

/*
 * mongoc_stream_poll() over streams of ours (libmongoc's connection checks
 * of several servers at once).  One stream waits on the latch; several
 * poll() in short slices with an interrupt check between them.  A pending
 * cancel or termination marks every stream failed (POLLERR), so that
 * libmongoc's checks end at once.
 */
static ssize_t
stream_poll(mongoc_stream_poll_t *streams, size_t nstreams, int32_t timeout_msec)
{
	int64		expire_at = expiry(timeout_msec);
	struct pollfd *pfds;
	ssize_t		ready = 0;
	size_t		i;

	for (i = 0; i < nstreams; i++)
		streams[i].revents = 0;

	if (nstreams == 1)
	{
		PolyglotMongoStream *s = (PolyglotMongoStream *) streams[0].stream;
		int			rc;

		if (s->fd < 0)
		{
			streams[0].revents = s->refused ? POLLHUP : POLLERR;
			return 1;
		}
		rc = wait_socket(s->fd, to_wl_events(streams[0].events), expire_at);
		if (rc == 0)
		{
			if (errno != EINTR)
				return 0;
			streams[0].revents = POLLERR;
			return 1;
		}
		streams[0].revents = ((rc & WL_SOCKET_READABLE) ? POLLIN : 0) |
			((rc & WL_SOCKET_WRITEABLE) ? POLLOUT : 0);
		streams[0].revents &= streams[0].events;
		return 1;
	}

	/* a closed or failed stream is reported at once (poll() would skip it) */
	for (i = 0; i < nstreams; i++)
	{
		PolyglotMongoStream *s = (PolyglotMongoStream *) streams[i].stream;

		if (s->fd < 0)
		{
			streams[i].revents = s->refused ? POLLHUP : POLLERR;
			ready++;
		}
	}
	if (ready > 0)
		return ready;

	pfds = bson_malloc0(sizeof(struct pollfd) * nstreams);
	for (i = 0; i < nstreams; i++)
	{
		pfds[i].fd = ((PolyglotMongoStream *) streams[i].stream)->fd;
		pfds[i].events = streams[i].events;
	}
	for (;;)
	{
		int			slice = POLL_SLICE_MS;
		int			rc;

		if (must_give_up())
		{
			for (i = 0; i < nstreams; i++)
				streams[i].revents = POLLERR;
			ready = nstreams;
			break;
		}
		if (expire_at >= 0)
		{
			int64		left = (expire_at - bson_get_monotonic_time()) / 1000;

			slice = (int) Max(Min(left, (int64) POLL_SLICE_MS), 0);
		}
		rc = poll(pfds, nstreams, slice);
		if (rc > 0)
		{
			for (i = 0; i < nstreams; i++)
				streams[i].revents = pfds[i].revents;
			ready = rc;
			break;
		}
		if (rc < 0 && errno != EINTR)
		{
			ready = -1;
			break;
		}
		if (rc == 0 && slice < POLL_SLICE_MS)
			break;				/* expired */
	}
	bson_free(pfds);
	return ready;
}

static PolyglotMongoStream *
stream_new(int fd)
{
	PolyglotMongoStream *s = bson_malloc0(sizeof(PolyglotMongoStream));

	s->vtable.type = POLYGLOT_MONGO_STREAM_TYPE;
	s->vtable.destroy = stream_destroy;
	s->vtable.close = stream_close;
	s->vtable.flush = stream_flush;
	s->vtable.writev = stream_writev;
	s->vtable.readv = stream_readv;
	s->vtable.setsockopt = stream_setsockopt;
	s->vtable.check_closed = stream_check_closed;
	s->vtable.poll = stream_poll;
	s->vtable.timed_out = stream_timed_out;
	s->vtable.should_retry = stream_should_retry;
	s->fd = fd;
	return s;
}

/*
 * A stream that never connected (errno err): every poll reports it failed,
 * hung up if the server refused, and every I/O fails.
 */
static mongoc_stream_t *
failed_stream(int err)
{
	PolyglotMongoStream *s = stream_new(-1);

	s->last_errno = err != 0 ? err : ECONNABORTED;
	s->refused = (err == ECONNREFUSED);
	return mongoc_stream_buffered_new((mongoc_stream_t *) s, 1024);
}

/*
 * Connects a non-blocking socket to one address within expire_at; returns
 * the socket, or -1 with errno set.
 */
static int
connect_one(const struct addrinfo *ai, int64 expire_at)
{
	int			fd;
	int			one = 1;
	int			so_error = 0;
	socklen_t	len = sizeof(so_error);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR)
		goto fail;
	if (wait_socket(fd, WL_SOCKET_WRITEABLE, expire_at) == 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
		goto fail;
	if (so_error == 0)
		return fd;
	errno = so_error;
fail:
	{
		int			save = errno;

		close(fd);
		errno = save;
	}
	return -1;
}

/*
 * The stream initiator of the clients polyglot_mongo_stream_setup() chose: a TCP
 * connection to host, each address in turn, within connectTimeoutMS.  A
 * failure returns a stream without a socket, whose first poll or I/O fails
 * (see the file header); error is set all the same.
 */
static mongoc_stream_t *
mongo_stream_initiator(const mongoc_uri_t *uri, const mongoc_host_list_t *host,
					   void *user_data, bson_error_t *error)
{
	struct addrinfo hints;
	struct addrinfo *result;
	struct addrinfo *ai;
	char		port[16];
	int32_t		connect_ms;
	int64		expire_at;
	int			rc;
	int			fd = -1;
	int			err = 0;

	connect_ms = mongoc_uri_get_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
												MONGOC_DEFAULT_CONNECTTIMEOUTMS);
	expire_at = expiry(connect_ms > 0 ? connect_ms : MONGOC_DEFAULT_CONNECTTIMEOUTMS);

	/* a pending cancel or exit: no name lookup, which cannot be interrupted */
	if (must_give_up())
	{
		bson_set_error(error, MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_CONNECT,
					   "Failed to connect to target host: %s (interrupted)", host->host_and_port);
		return failed_stream(EINTR);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = host->family;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%hu", host->port);
	rc = getaddrinfo(host->host, port, &hints, &result);
	if (rc != 0)
	{
		bson_set_error(error, MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_NAME_RESOLUTION,
					   "Failed to resolve '%s': %s", host->host, gai_strerror(rc));
		return failed_stream(EHOSTUNREACH);
	}
	for (ai = result; ai != NULL && fd < 0; ai = ai->ai_next)
	{
		fd = connect_one(ai, expire_at);
		if (fd < 0)
		{
			err = errno;
			if (err == EINTR)
				break;			/* a cancel: no other address either */
		}
	}
	freeaddrinfo(result);
	if (fd < 0)
	{
		bson_set_error(error, MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_CONNECT,
					   "Failed to connect to target host: %s (%s)", host->host_and_port,
					   err == EINTR ? "interrupted" : strerror(err));
		return failed_stream(err);
	}
	return mongoc_stream_buffered_new((mongoc_stream_t *) stream_new(fd), 1024);
}

/*
 * Gives a new client of uri the streams above, unless it connects with TLS
 * or to a Unix-domain socket, which keep libmongoc's own streams.
 */
void
polyglot_mongo_stream_setup(mongoc_client_t *client, const mongoc_uri_t *uri)
{
	const mongoc_host_list_t *host;

	if (mongoc_uri_get_tls(uri))
		return;
	for (host = mongoc_uri_get_hosts(uri); host != NULL; host = host->next)
		if (host->family == AF_UNIX)
			return;
	mongoc_client_set_stream_initiator(client, mongo_stream_initiator, NULL);
}
