/*
 * probe.h - the readiness probe of one cluster: every KB_PROBE_INTERVAL seconds it connects to
 * a bootstrap server exactly as a bridge would (DNS, TCP, verified TLS), sends a brokers-only
 * Metadata request and feeds the answer to the broker map (which also opens the broker
 * listeners before the first client asks). /readyz reads the outcome from the cluster metrics.
 */
#ifndef KB_PROXY_PROBE_H
#define KB_PROXY_PROBE_H

#define KB_PROBE_INTERVAL 30 /* seconds between probes; /readyz allows 3 intervals */

struct kb_cluster;
struct probe;

/*
 * Starts probing cl now with cl's current settings (pinned for the probe's life; a reload
 * replaces the probe). cl owns the probe. When the first round ends, ok or not, it calls
 * cluster_probe_settled(cl). NULL when out of memory.
 */
struct probe *probe_new(struct kb_cluster *cl);

/* Stops and frees the probe. NULL is fine. */
void probe_free(struct probe *pr);

#endif
