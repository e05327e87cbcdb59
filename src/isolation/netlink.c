/*
 * netlink.c - reads routes and links over rtnetlink (NETLINK_ROUTE dumps).
 * Routes of every table are read, not only main, so policy routing cannot
 * hide a way out; only unicast routes count (local, broadcast, multicast,
 * unreachable, blackhole and prohibit routes carry nothing out).
 */
#include "iso_internal.h"

#include <errno.h>
#include <net/if.h> /* before the linux/ headers, which then skip their copy */
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NL_BUF 32768

typedef int (*nl_msg_fn)(const struct nlmsghdr *h, void *ctx, creto_err *e);

/* Send one dump request and hand every answer to fn. */
static int nl_dump(uint16_t type, const void *body, size_t bodylen, nl_msg_fn fn, void *ctx, creto_err *e)
{
	int rc = CRETO_EOP;
	char *buf = NULL;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return creto_err_errno(e, errno, "netlink socket");
	struct timeval tv = {.tv_sec = 5, .tv_usec = 0}; /* never hang on a silent kernel */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct {
		struct nlmsghdr h;
		char body[64];
	} req;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = (uint32_t)NLMSG_LENGTH(bodylen);
	req.h.nlmsg_type = type;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1;
	memcpy(req.body, body, bodylen);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = creto_err_errno(e, errno, "netlink send");
		goto out;
	}
	buf = malloc(NL_BUF);
	if (buf == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "netlink: out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, NL_BUF, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = creto_err_errno(e, errno, "netlink receive");
			goto out;
		}
		if (n == 0) {
			rc = creto_err_set(e, CRETO_EOP, "netlink: unexpected end of dump");
			goto out;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != 1)
				continue;
			if (h->nlmsg_type == NLMSG_DONE) {
				rc = CRETO_OK;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *err = NLMSG_DATA(h);
				rc = creto_err_errno(e, err->error < 0 ? -err->error : EIO, "netlink dump");
				goto out;
			}
			rc = fn(h, ctx, e);
			if (rc != CRETO_OK)
				goto out;
		}
	}
out:
	free(buf);
	close(fd);
	return rc;
}

struct route_ctx {
	int family;
	creto_iso_routes *out;
};

static int on_route(const struct nlmsghdr *h, void *vctx, creto_err *e)
{
	struct route_ctx *ctx = vctx;
	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
		return CRETO_OK;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	if (rtm->rtm_family != ctx->family || rtm->rtm_type != RTN_UNICAST || (rtm->rtm_flags & RTM_F_CLONED))
		return CRETO_OK;
	size_t alen = ctx->family == AF_INET ? 4 : 16;
	unsigned maxlen = ctx->family == AF_INET ? 32 : 128;
	if (rtm->rtm_dst_len > maxlen)
		return CRETO_OK;
	creto_iso_route rt;
	memset(&rt, 0, sizeof(rt));
	rt.dst.family = ctx->family;
	rt.dst.len = rtm->rtm_dst_len;
	rt.table = rtm->rtm_table;
	int oif = 0;
	int len = (int)RTM_PAYLOAD(h);
	for (const struct rtattr *a = RTM_RTA(rtm); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t plen = RTA_PAYLOAD(a);
		switch (a->rta_type) {
		case RTA_DST:
			if (plen == alen)
				memcpy(rt.dst.addr, RTA_DATA(a), alen);
			break;
		case RTA_GATEWAY:
			if (plen == alen) {
				memcpy(rt.gateway, RTA_DATA(a), alen);
				rt.has_gateway = 1;
			}
			break;
		case RTA_OIF:
			if (plen == sizeof(int))
				memcpy(&oif, RTA_DATA(a), sizeof(int));
			break;
		case RTA_TABLE:
			if (plen == sizeof(uint32_t))
				memcpy(&rt.table, RTA_DATA(a), sizeof(uint32_t));
			break;
		case RTA_MULTIPATH: {
			/* name the first next hop; the destination is what is judged */
			const struct rtnexthop *nh = RTA_DATA(a);
			if (plen >= sizeof(*nh) && nh->rtnh_len >= sizeof(*nh) && nh->rtnh_len <= plen) {
				if (oif == 0)
					oif = nh->rtnh_ifindex;
				int nlen = (int)(nh->rtnh_len - sizeof(*nh));
				for (const struct rtattr *na = RTNH_DATA(nh); RTA_OK(na, nlen); na = RTA_NEXT(na, nlen))
					if (na->rta_type == RTA_GATEWAY && RTA_PAYLOAD(na) == alen && !rt.has_gateway) {
						memcpy(rt.gateway, RTA_DATA(na), alen);
						rt.has_gateway = 1;
					}
			}
			break;
		}
		default:
			break;
		}
	}
	/* clear host bits, as the prefix helpers expect */
	char s[CRETO_ISO_ADDRSTRLEN];
	creto_iso_prefix_format(&rt.dst, s);
	if (creto_iso_prefix_parse(s, &rt.dst) != 0)
		return CRETO_OK;
	char name[IF_NAMESIZE];
	if (oif > 0 && if_indextoname((unsigned)oif, name) != NULL)
		snprintf(rt.dev, sizeof(rt.dev), "%s", name);
	else if (oif > 0)
		snprintf(rt.dev, sizeof(rt.dev), "if%d", oif);
	return iso_routes_push(ctx->out, &rt, e);
}

int iso_netlink_routes(int family, creto_iso_routes *out, creto_err *e)
{
	struct rtmsg rtm;
	memset(&rtm, 0, sizeof(rtm));
	rtm.rtm_family = (unsigned char)family;
	struct route_ctx ctx = {family, out};
	return nl_dump(RTM_GETROUTE, &rtm, sizeof(rtm), on_route, &ctx, e);
}

struct link_ctx {
	char *bad;
	size_t badlen;
};

static int on_link(const struct nlmsghdr *h, void *vctx, creto_err *e)
{
	(void)e;
	struct link_ctx *ctx = vctx;
	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		return CRETO_OK;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	char name[IF_NAMESIZE + 1] = "?";
	int is_veth = 0, peer_elsewhere = 0;
	int len = (int)IFLA_PAYLOAD(h);
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t plen = RTA_PAYLOAD(a);
		if (a->rta_type == IFLA_IFNAME && plen > 0) {
			size_t n = plen < IF_NAMESIZE ? plen : IF_NAMESIZE;
			memcpy(name, RTA_DATA(a), n);
			name[n] = '\0';
		} else if (a->rta_type == IFLA_LINK_NETNSID) {
			peer_elsewhere = 1;
		} else if (a->rta_type == IFLA_LINKINFO) {
			int ilen = (int)plen;
			for (const struct rtattr *ia = RTA_DATA(a); RTA_OK(ia, ilen); ia = RTA_NEXT(ia, ilen))
				if (ia->rta_type == IFLA_INFO_KIND && RTA_PAYLOAD(ia) >= 4 &&
				    memcmp(RTA_DATA(ia), "veth", 4) == 0 &&
				    (RTA_PAYLOAD(ia) == 4 || ((const char *)RTA_DATA(ia))[4] == '\0'))
					is_veth = 1;
		}
	}
	if (ifi->ifi_type == ARPHRD_LOOPBACK && !peer_elsewhere)
		return CRETO_OK;
	if (is_veth && !peer_elsewhere)
		return CRETO_OK;
	size_t used = strlen(ctx->bad);
	if (used + strlen(name) + 2 < ctx->badlen)
		snprintf(ctx->bad + used, ctx->badlen - used, "%s%s", used ? "," : "", name);
	return CRETO_OK;
}

int iso_netlink_escaping_links(char *bad, size_t badlen, creto_err *e)
{
	struct ifinfomsg ifi;
	memset(&ifi, 0, sizeof(ifi));
	ifi.ifi_family = AF_UNSPEC;
	bad[0] = '\0';
	struct link_ctx ctx = {bad, badlen};
	return nl_dump(RTM_GETLINK, &ifi, sizeof(ifi), on_link, &ctx, e);
}
