/*
 * loopback.h - the listening socket of the bench's small servers
 * (upstream.c, relay.c): non-blocking, on 127.0.0.1:port (0 picks one),
 * its port printed as "listening PORT" for the script that started it.
 */
#ifndef CRETO_BENCH_LOOPBACK_H
#define CRETO_BENCH_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

/* The listening fd, or -1 (perror'd as who). */
static int bench_listen(const char *who, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1024) != 0) {
		perror(who);
		return -1;
	}
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	printf("listening %u\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

#endif
