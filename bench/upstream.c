/*
 * upstream.c - the benchmark's model server: a small epoll HTTP/1.1 server
 * answering every POST with one fixed chat completion (Content-Length,
 * keep-alive) and GET /health with 200.  It stands in for vLLM where the
 * Node stand-in of the tests would be the bottleneck; the same program is
 * the upstream of nginx and of the gateway, so their figures compare.
 *
 * A request whose body holds "stream":true gets an SSE answer instead: 25
 * events 20 ms apart (the first at once), each carrying the wall-clock
 * time it was written ("standin_sent_ms", as the test stand-in does), so a
 * client can measure what a proxy adds to each event.
 *
 * Usage: bench_upstream PORT   (prints "listening PORT"; runs until killed)
 * Requests are parsed with the gateway's own strict parser.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "gateway/http.h"
#include "loopback.h"

static const char k_body[] =
	"{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"m1\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"tok0 tok1 tok2 tok3 "
	"tok4 tok5 tok6 tok7\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":2,"
	"\"total_tokens\":10,\"completion_tokens\":8}}";

struct c {
	int fd;
	int ep;
	char in[65536];
	size_t len;
};

/* The SSE answer, written by its own thread while the loop ignores the fd. */
static void *stream_main(void *arg)
{
	struct c *c = arg;
	static const char head[] = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
				   "transfer-encoding: chunked\r\n\r\n";
	(void)!write(c->fd, head, sizeof(head) - 1);
	for (int i = 0; i < 25; i++) {
		if (i) {
			struct timespec d = {0, 20 * 1000000};
			nanosleep(&d, NULL);
		}
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		char ev[256], out[300];
		int n = snprintf(ev, sizeof(ev),
				 "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
				 "{\"content\":\"tok%d\"}}],\"standin_sent_ms\":%.3f}\n\n",
				 i, (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6);
		int m = snprintf(out, sizeof(out), "%x\r\n%s\r\n", n, ev);
		(void)!write(c->fd, out, (size_t)m);
	}
	static const char end[] = "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
	(void)!write(c->fd, end, sizeof(end) - 1);
	struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(c->ep, EPOLL_CTL_ADD, c->fd, &e2);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: bench_upstream PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	char resp[1024];
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n\r\n%s",
			  sizeof(k_body) - 1, k_body);
	static const char health[] = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
	int ls = bench_listen("bench_upstream: bind", (uint16_t)atoi(argv[1]));
	if (ls < 0)
		return 1;
	int one = 1;
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	gw_http_limits lim = {8192, 16384, 64, 1 << 20};
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct c *c = evs[i].data.ptr;
			if (c == NULL) {
				int fd;
				while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					struct c *nc = calloc(1, sizeof(*nc));
					nc->fd = fd;
					nc->ep = ep;
					struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = nc};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
				}
				continue;
			}
			ssize_t k = read(c->fd, c->in + c->len, sizeof(c->in) - c->len);
			if (k <= 0) {
				if (k < 0 && errno == EAGAIN)
					continue;
				close(c->fd);
				free(c);
				continue;
			}
			c->len += (size_t)k;
			for (;;) {
				gw_http_req r;
				if (gw_http_parse_request(c->in, c->len, &lim, &r) != 0)
					break;
				size_t need = r.head_len + (size_t)(r.content_length > 0 ? r.content_length : 0);
				if (c->len < need)
					break;
				int stream = r.content_length > 0 &&
					     memmem(c->in + r.head_len, (size_t)r.content_length, "\"stream\":true", 13);
				memmove(c->in, c->in + need, c->len - need);
				c->len -= need;
				if (stream) {
					pthread_t th;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					if (pthread_create(&th, NULL, stream_main, c) == 0)
						pthread_detach(th);
					break;
				}
				if (r.method == GW_M_GET)
					(void)!write(c->fd, health, sizeof(health) - 1);
				else
					(void)!write(c->fd, resp, (size_t)rl);
			}
		}
	}
}
