/*
 * check_dial.c - DNS and TCP for `kbridge check`. The cause keywords match the daemon's log
 * ("DNS failure", "connection refused", "connect timed out", "host unreachable"); check adds the
 * likely reasons and a fix, since it has room for more than one line.
 */
#include "check/check_dial.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>

#include "check/check_net.h"
#include "tls/tlsconn.h"
#include "tls/tlserr.h"

#define CHECK_DIAL_SHOWN 4 /* resolved addresses listed before "and N more" */

/* ---- Internal ---------------------------------------------------------------------------- */

/* "127.0.0.1, ::1 and 2 more" for the addresses of res. */
static const char *
check_dial_addrs(const struct addrinfo *res, char *out, size_t outlen)
{
    char host[NI_MAXHOST];
    const struct addrinfo *ai;
    size_t len = 0;
    int n = 0;

    out[0] = '\0';
    for (ai = res; ai; ai = ai->ai_next, n++) {
        if (n >= CHECK_DIAL_SHOWN || len >= outlen ||
            getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) !=
                0) {
            continue;
        }
        tlserr_format(out + len, outlen - len, "%s%s", n ? ", " : "", host);
        len += strlen(out + len);
    }
    if (n > CHECK_DIAL_SHOWN && len < outlen) {
        tlserr_format(out + len, outlen - len, " and %d more", n - CHECK_DIAL_SHOWN);
    }
    return out;
}

/* Step 1. Returns the addresses (caller frees), or NULL after recording the failure. */
static struct addrinfo *
check_dial_dns(struct check_report *rep, struct check_target *t, const struct kb_cluster_conf *cc,
               const struct kb_hostport *name, const struct kb_hostport *dial)
{
    char addrs[512], via[CHECK_ADDR_MAX + 64] = "";
    struct addrinfo *res = NULL;
    long t0 = check_now_ms();
    const char *fix;
    int gai;

    if (dial != name) {
        tlserr_format(via, sizeof(via), " (connect_to: dialling %s for %s)", t->dial, t->address);
    }
    gai = check_net_resolve(dial->host, dial->port, &res);
    if (gai != 0) {
        if (t->role == CHECK_ROLE_LISTENER) {
            fix = "check listen and advertised_host in this cluster's section";
        } else if (t->role == CHECK_ROLE_BROKER) {
            fix = "the cluster advertises a name this host cannot resolve: fix DNS here, or map "
                  "it with connect_to = NAME:PORT=REACHABLE_HOST:PORT";
        } else {
            fix = "check the host in bootstrap_servers (MSK: the TLS bootstrap string, port "
                  "9094, from the console or `aws kafka get-bootstrap-brokers`); MSK names of a "
                  "cluster without public access resolve only inside its VPC";
        }
        check_step_add(rep, t, CHECK_STEP_DNS, CHECK_FAIL, check_now_ms() - t0,
                       gai == EAI_AGAIN ? "a temporary DNS failure: is a DNS server reachable "
                                          "from this host? Then try again"
                                        : fix,
                       "DNS failure: cannot resolve '%s': %s%s", dial->host, gai_strerror(gai),
                       via);
        return NULL;
    }
    check_dial_addrs(res, addrs, sizeof(addrs));
    /* MSK certificates name hosts: an IP in bootstrap_servers fails full verification, unless
     * the certificate happens to carry that IP (step 5 says which). tls_sni replaces the name. */
    if (t->role == CHECK_ROLE_BOOTSTRAP && name->is_ip && cc->tls &&
        cc->tls_verify == KB_VERIFY_FULL && (!cc->tls_sni || tlsconn_is_ip_literal(cc->tls_sni))) {
        check_step_add(rep, t, CHECK_STEP_DNS, CHECK_WARN, check_now_ms() - t0,
                       "put the broker's host name in bootstrap_servers, or keep the name and "
                       "dial the IP with connect_to = NAME:9094=IP:9094",
                       "%s is an IP literal%s; with tls_verify = full the certificate must name "
                       "this IP, and MSK certificates name hosts (b-N.<cluster>...amazonaws.com), "
                       "not IP addresses",
                       name->host, via);
    } else {
        check_step_add(rep, t, CHECK_STEP_DNS, CHECK_OK, check_now_ms() - t0, NULL, "%s%s%s%s",
                       dial->host, dial->is_ip ? " (an IP literal: no lookup)" : " -> ",
                       dial->is_ip ? "" : addrs, via);
    }
    return res;
}

/* The cause and fix of a failed connect to dial (errno err) for step 2. */
static void
check_dial_cause(const struct check_target *t, const struct kb_cluster_conf *cc, int err,
                 const char *dial, char *why, size_t whylen, const char **fix)
{
    bool listener = t->role == CHECK_ROLE_LISTENER;

    switch (err) {
    case ECONNREFUSED:
        if (listener) {
            tlserr_format(why, whylen, "connection refused: kbridge is not listening on %s", dial);
            *fix = "start kbridge with this configuration (kbridge -c FILE) and check again: "
                   "--produce-test goes through kbridge's own listener";
            return;
        }
        tlserr_format(why, whylen, "connection refused by %s: nothing listens on that port", dial);
        *fix = "check the port: " CHECK_MSK_PORTS "; check that the cluster is ACTIVE and the "
               "broker is up";
        return;
    case ETIMEDOUT:
        tlserr_format(why, whylen,
                      "connect timed out after %d ms to %s: no answer, packets are "
                      "dropped on the way",
                      cc->connect_timeout_ms, dial);
        *fix =
            listener
                ? "is kbridge running, and not stopped or overloaded?"
                : "open the cluster's security group to this host's egress IP (inbound "
                  "TCP on the broker port); from outside the VPC MSK public access must "
                  "be on; check that the cluster is ACTIVE and the port is right: " CHECK_MSK_PORTS;
        return;
    case EHOSTUNREACH:
    case ENETUNREACH:
        tlserr_format(why, whylen, "host unreachable: %s: %s (no route from this host)", dial,
                      strerror(err));
        *fix = "a private VPC address (MSK without public access) is reachable only through a "
               "VPN, peering or a tunnel (see connect_to); or turn on public access and use the "
               "public bootstrap string";
        return;
    default:
        tlserr_format(why, whylen, "connect to %s failed: %s", dial, strerror(err));
        *fix = NULL;
        return;
    }
}

/* ---- Public ------------------------------------------------------------------------------ */

int
check_dial_run(struct check_report *rep, struct check_target *t, const struct kb_cluster_conf *cc,
               const struct kb_hostport *name)
{
    /* connect_to maps broker addresses; kbridge's own listener is dialled as it is. */
    const struct kb_hostport *dial =
        t->role == CHECK_ROLE_LISTENER ? name : conf_connect_target(cc, name);
    char first[CHECK_ADDR_MAX], used_str[CHECK_ADDR_MAX], tried[1024], why[768];
    const struct addrinfo *used;
    struct addrinfo *res;
    const char *fix = NULL;
    int fd, err;
    long t0;

    if (dial != name) {
        conf_hostport_str(dial, t->dial, sizeof(t->dial));
    }
    res = check_dial_dns(rep, t, cc, name, dial);
    if (!res) {
        return -1;
    }
    t0 = check_now_ms();
    fd = check_net_dial(res, cc->connect_timeout_ms, &used, &err, tried, sizeof(tried));
    check_net_addr_str(res->ai_addr, first, sizeof(first));
    if (fd < 0) {
        check_dial_cause(t, cc, err, first, why, sizeof(why), &fix);
        check_step_add(rep, t, CHECK_STEP_TCP, CHECK_FAIL, check_now_ms() - t0, fix, "%s%s%s", why,
                       res->ai_next ? "; every address failed: " : "", res->ai_next ? tried : "");
    } else if (used != res) {
        /* libevent's connect-by-name (the daemon's) dials the first address only. */
        check_step_add(rep, t, CHECK_STEP_TCP, CHECK_WARN, check_now_ms() - t0,
                       "make the name resolve to reachable addresses only, or dial the one that "
                       "works with connect_to",
                       "connected to %s, but not to the first address (%s), the only one kbridge "
                       "dials",
                       check_net_addr_str(used->ai_addr, used_str, sizeof(used_str)), tried);
    } else {
        check_step_add(rep, t, CHECK_STEP_TCP, CHECK_OK, check_now_ms() - t0, NULL,
                       "connected to %s in %ld ms", first, check_now_ms() - t0);
    }
    freeaddrinfo(res);
    return fd;
}
