/*
 * relay.c - the benchmark's floor: the least any proxy can do between a
 * client and bench_upstream on this machine.  Each accepted connection
 * gets its own upstream connection, opened at accept, and bytes are copied
 * both ways as they arrive: no HTTP parsing, no pool, no token, no audit.
 * One request then costs the relay four socket calls (read the client,
 * write the upstream, read the upstream, write the client) and the wake-ups
 * between them, which is the kernel's share of every proxy here, nginx's
 * and the gateway's included.  bench/gateway.sh measures it beside them so
 * a goal can be read against what the machine allows.
 *
 * Two threads, one epoll each, sharing the listening socket with
 * EPOLLEXCLUSIVE (nginx's worker_processes auto on two CPUs).  A write that
 * does not complete keeps the rest and waits for EPOLLOUT, reading nothing
 * more from that side until it is out (bounded memory, backpressure).
 *
 * Usage: bench_relay LISTEN_PORT UPSTREAM_PORT  (prints "listening PORT")
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback.h"

#define BUF 65536

struct side {
	int fd;
	struct side *peer;
	int ep;
	size_t off, len; /* bytes from the peer still to write to fd */
	char buf[BUF];
};

static int g_listen;
static char g_listen_tag; /* epoll data of the listening socket */
static struct sockaddr_in g_up;

static void pair_close(struct side *s)
{
	struct side *p = s->peer;
	close(s->fd);
	close(p->fd);
	free(s < p ? s : p); /* both sides are one allocation */
}

static void arm(struct side *s, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = s};
	epoll_ctl(s->ep, EPOLL_CTL_MOD, s->fd, &e);
}

/* Writes what s holds for its fd; 1 when all is out, 0 when it waits,
 * -1 on error. */
static int flush(struct side *s)
{
	while (s->off < s->len) {
		ssize_t k = write(s->fd, s->buf + s->off, s->len - s->off);
		if (k < 0)
			return errno == EAGAIN ? 0 : -1;
		s->off += (size_t)k;
	}
	s->off = s->len = 0;
	return 1;
}

/* s is readable: read into the peer's buffer and write it to the peer. */
static int relay(struct side *s)
{
	struct side *p = s->peer;
	ssize_t k = read(s->fd, p->buf, BUF);
	if (k <= 0)
		return k < 0 && errno == EAGAIN ? 0 : -1;
	p->off = 0;
	p->len = (size_t)k;
	int r = flush(p);
	if (r == 0) { /* the peer is full: stop reading s until it drains */
		arm(s, 0);
		arm(p, EPOLLIN | EPOLLOUT);
	}
	return r < 0 ? -1 : 0;
}

static void accept_one(int ep)
{
	int fd = accept4(g_listen, NULL, NULL, SOCK_NONBLOCK);
	if (fd < 0)
		return;
	int u = socket(AF_INET, SOCK_STREAM, 0);
	if (u < 0 || connect(u, (struct sockaddr *)&g_up, sizeof(g_up)) != 0) {
		close(fd);
		if (u >= 0)
			close(u);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(u, F_SETFL, fcntl(u, F_GETFL) | O_NONBLOCK);
	struct side *pair = calloc(2, sizeof(*pair));
	if (pair == NULL) {
		close(fd);
		close(u);
		return;
	}
	pair[0] = (struct side){.fd = fd, .peer = &pair[1], .ep = ep};
	pair[1].fd = u;
	pair[1].peer = &pair[0];
	pair[1].ep = ep;
	struct epoll_event e0 = {.events = EPOLLIN, .data.ptr = &pair[0]};
	struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &pair[1]};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e0);
	epoll_ctl(ep, EPOLL_CTL_ADD, u, &e1);
}

static void *worker(void *arg)
{
	(void)arg;
	int ep = epoll_create1(0);
	struct epoll_event le = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &g_listen_tag};
	epoll_ctl(ep, EPOLL_CTL_ADD, g_listen, &le);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct side *s = evs[i].data.ptr;
			if (s == NULL) /* closed earlier in this batch */
				continue;
			if ((void *)s == &g_listen_tag) {
				accept_one(ep);
				continue;
			}
			int bad = 0;
			if (evs[i].events & EPOLLOUT) { /* s drained: resume its peer */
				int r = flush(s);
				bad = r < 0;
				if (r > 0) {
					arm(s, EPOLLIN);
					arm(s->peer, EPOLLIN);
				}
			} else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				bad = relay(s) < 0;
			}
			if (bad) {
				/* the pair's other events in this batch must not use it */
				for (int j = i + 1; j < n; j++)
					if (evs[j].data.ptr == s || evs[j].data.ptr == s->peer)
						evs[j].data.ptr = NULL, evs[j].events = 0;
				pair_close(s);
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench_relay LISTEN_PORT UPSTREAM_PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	g_up = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
	g_up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((g_listen = bench_listen("bench_relay", (uint16_t)atoi(argv[1]))) < 0)
		return 1;
	pthread_t th;
	if (pthread_create(&th, NULL, worker, NULL) != 0) {
		perror("bench_relay: pthread_create");
		return 1;
	}
	worker(NULL);
	return 0;
}
