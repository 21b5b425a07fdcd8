// roundtrip.js - kbridge integration test client: produce N distinct messages with kafkajs, read
// them back in a consumer group, and check every one arrived intact. Exits 0 on success, 1 on any
// mismatch or error, 2 on its own deadline. Driven by tests/integration/test_clients.py.
//
// env: KB_BOOTSTRAP  host:port[,host:port]   (required)
//      KB_TOPIC      topic name               (required; must already exist)
//      KB_COUNT      messages to send         (default 500)
//      KB_GROUP      consumer group id        (default kbridge-kafkajs-<pid>)
//      KB_ADVERTISED_HOST, KB_PORT_BASE       if set: every broker in describeCluster() must be
//                                             KB_ADVERTISED_HOST:KB_PORT_BASE+nodeId
//      KB_SSL_CA     CA file: talk TLS (only for trying kafkajs straight against kbmock)
//      KB_SASL_MECHANISM PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512: the client's own SASL, with
//                    KB_SASL_USERNAME and KB_SASL_PASSWORD (default: no SASL)
//      KB_REAUTH_THRESHOLD_MS kafkajs re-authenticates (KIP-368) this long before the session
//                    ends (kafkajs default 10000)
//      KB_SEND_INTERVAL_MS pause between produce batches of 100 (default 0), to spread a
//                    produce over several SASL sessions
//      KB_DEADLINE_MS overall deadline        (default 60000)
'use strict';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const env = process.env;
const bootstrap = (env.KB_BOOTSTRAP || '').split(',').filter(Boolean);
const topic = env.KB_TOPIC;
const count = parseInt(env.KB_COUNT || '500', 10);
const groupId = env.KB_GROUP || `kbridge-kafkajs-${process.pid}`;
const deadlineMs = parseInt(env.KB_DEADLINE_MS || '60000', 10);

function log(msg) {
    process.stderr.write(`roundtrip.js: ${msg}\n`);
}

if (bootstrap.length === 0 || !topic) {
    log('KB_BOOTSTRAP and KB_TOPIC are required');
    process.exit(1);
}

const deadline = setTimeout(() => {
    log(`deadline of ${deadlineMs} ms passed`);
    process.exit(2);
}, deadlineMs);

const kafka = new Kafka({
    clientId: 'kbridge-it-kafkajs',
    brokers: bootstrap,
    ssl: env.KB_SSL_CA ? { ca: [fs.readFileSync(env.KB_SSL_CA, 'utf8')] } : false,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 5, initialRetryTime: 200 },
    logLevel: logLevel.WARN,
    sasl: env.KB_SASL_MECHANISM
        ? {
              mechanism: env.KB_SASL_MECHANISM.toLowerCase(),
              username: env.KB_SASL_USERNAME,
              password: env.KB_SASL_PASSWORD,
          }
        : undefined,
    reauthenticationThreshold: env.KB_REAUTH_THRESHOLD_MS
        ? parseInt(env.KB_REAUTH_THRESHOLD_MS, 10)
        : undefined,
});
const sendIntervalMs = parseInt(env.KB_SEND_INTERVAL_MS || '0', 10);

function payload(i) {
    // distinct and self-checking: the index and a value derived from it
    return `kafkajs-${i}-${(i * 2654435761) % 4294967296}`;
}

async function checkMetadata(admin) {
    const cluster = await admin.describeCluster();
    const brokers = cluster.brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`);
    log(`describeCluster: ${brokers.join(' ')} controller=${cluster.controller}`);
    if (!env.KB_PORT_BASE) {
        return true;
    }
    const base = parseInt(env.KB_PORT_BASE, 10);
    const host = env.KB_ADVERTISED_HOST || '127.0.0.1';
    const bad = cluster.brokers.filter((b) => b.host !== host || b.port !== base + b.nodeId);
    if (cluster.brokers.length === 0 || bad.length > 0) {
        log(`brokers not at ${host}:${base}+nodeId: ${JSON.stringify(bad)}`);
        return false;
    }
    return true;
}

async function main() {
    const admin = kafka.admin();
    await admin.connect();
    const metadataOk = await checkMetadata(admin);
    await admin.disconnect();

    const producer = kafka.producer();
    await producer.connect();
    const batch = [];
    for (let i = 0; i < count; i++) {
        batch.push({ key: `k${i}`, value: payload(i) });
    }
    for (let i = 0; i < batch.length; i += 100) {
        await producer.send({ topic, messages: batch.slice(i, i + 100) });
        if (sendIntervalMs > 0) {
            await new Promise((resolve) => setTimeout(resolve, sendIntervalMs));
        }
    }
    await producer.disconnect();
    log(`produced ${count}`);

    const seen = new Map();
    let bad = 0;
    const consumer = kafka.consumer({
        groupId,
        sessionTimeout: 10000,
        rebalanceTimeout: 10000,
        heartbeatInterval: 1000,
        maxWaitTimeInMs: 200,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise((resolve) => {
        consumer.run({
            eachMessage: async ({ message }) => {
                const key = message.key ? message.key.toString() : '';
                const value = message.value ? message.value.toString() : '';
                const i = parseInt(key.slice(1), 10);
                if (!(i >= 0 && i < count) || value !== payload(i)) {
                    log(`bad message: key=${key} value=${value}`);
                    bad++;
                }
                seen.set(key, (seen.get(key) || 0) + 1);
                if (seen.size === count) {
                    resolve();
                }
            },
        });
    });
    await done;
    await consumer.disconnect();

    const dups = [...seen.values()].filter((n) => n > 1).length;
    log(`consumed ${seen.size} distinct of ${count} (duplicates: ${dups}, bad: ${bad})`);
    clearTimeout(deadline);
    return metadataOk && bad === 0 && seen.size === count;
}

main().then(
    (ok) => process.exit(ok ? 0 : 1),
    (err) => {
        log(`error: ${err && err.stack ? err.stack : err}`);
        process.exit(1);
    },
);
