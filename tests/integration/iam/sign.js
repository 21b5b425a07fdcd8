#!/usr/bin/env node
// sign.js - genuine MSK IAM signers from npm, for tests/integration/test_iam_verify.py:
//   token   <region>        aws-msk-iam-sasl-signer-js generateAuthTokenFromCredentialsProvider():
//                           prints the OAUTHBEARER token
//   payload <region> <host> @jm18457/kafkajs-msk-iam-authentication-mechanism's kafkajs
//                           authenticator, run against a stand-in saslAuthenticate that captures
//                           the SaslAuthenticate request it encodes: prints the AWS_MSK_IAM JSON
//   connect-iam|connect-oauth <region> <host> <port>
//                           kafkajs 2.2.4 with either mechanism connects (admin.connect()) to a
//                           SASL broker at host:port: prints "connected" or fails with its error
//                           (KB_TLS_CA=<ca.pem>: over TLS, verified against that CA)
// Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional).
// KB_FIXED_TIME=<epoch seconds> pins the signers' clock (Date), so their signatures can be
// compared byte for byte with kbridge's for the same inputs. Prints only to stdout; test keys only.
'use strict';

const fixed = process.env.KB_FIXED_TIME;
if (fixed) {
    const ms = Number(fixed) * 1000;
    const RealDate = Date;
    class FixedDate extends RealDate {
        constructor(...args) {
            if (args.length === 0) {
                super(ms);
            } else {
                super(...args);
            }
        }
        static now() {
            return ms;
        }
    }
    global.Date = FixedDate;
}

function credentials() {
    const c = {
        accessKeyId: process.env.AWS_ACCESS_KEY_ID,
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
    };
    if (process.env.AWS_SESSION_TOKEN) {
        c.sessionToken = process.env.AWS_SESSION_TOKEN;
    }
    if (!c.accessKeyId || !c.secretAccessKey) {
        throw new Error('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set');
    }
    return c;
}

async function token(region) {
    const { generateAuthTokenFromCredentialsProvider } = require('aws-msk-iam-sasl-signer-js');
    const creds = credentials();
    const out = await generateAuthTokenFromCredentialsProvider({
        region,
        awsCredentialsProvider: async () => creds,
    });
    return out.token;
}

async function payload(region, host) {
    const { createMechanism } = require('@jm18457/kafkajs-msk-iam-authentication-mechanism');
    const creds = credentials();
    const mech = createMechanism({ region, credentials: creds });
    let captured = null;
    const noop = () => {};
    const logger = { info: noop, error: noop, warn: noop, debug: noop };
    const auth = mech.authenticationProvider({
        host,
        port: 9098,
        logger,
        saslAuthenticate: async ({ request, response }) => {
            const frame = request.encode();
            captured = frame.slice(4, 4 + frame.readInt32BE(0));
            // MSK's answer, decoded the way the mechanism decodes a real broker's.
            const answer = Buffer.from(JSON.stringify({ version: '2020_10_22', 'request-id': 'x' }));
            const raw = Buffer.alloc(4 + answer.length);
            raw.writeInt32BE(answer.length, 0);
            answer.copy(raw, 4);
            return response.parse(response.decode(raw));
        },
    });
    await auth.authenticate();
    return captured.toString('utf8');
}

// A real kafkajs client authenticating to <host>:<port> with the genuine mechanism: admin.connect()
// runs ApiVersions, SaslHandshake and SaslAuthenticate against the seed broker.
async function connect(mechanism, region, host, port) {
    const { Kafka, logLevel } = require('kafkajs');
    const creds = credentials();
    let sasl;
    if (mechanism === 'AWS_MSK_IAM') {
        const { createMechanism } = require('@jm18457/kafkajs-msk-iam-authentication-mechanism');
        sasl = createMechanism({ region, credentials: creds });
    } else {
        const { generateAuthTokenFromCredentialsProvider } = require('aws-msk-iam-sasl-signer-js');
        sasl = {
            mechanism: 'oauthbearer',
            oauthBearerProvider: async () => {
                const t = await generateAuthTokenFromCredentialsProvider({
                    region,
                    awsCredentialsProvider: async () => creds,
                });
                return { value: t.token };
            },
        };
    }
    const kafka = new Kafka({
        clientId: 'kbridge-iam-test',
        brokers: [`${host}:${port}`],
        sasl,
        // KB_TLS_CA: the broker is TLS (kbmock's fronts), verified against that CA
        ssl: process.env.KB_TLS_CA ? { ca: [require('fs').readFileSync(process.env.KB_TLS_CA)] }
            : false,
        connectionTimeout: 5000,
        authenticationTimeout: 5000,
        retry: { retries: 0 },
        logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.disconnect();
    return 'connected';
}

async function main() {
    const [what, region, host, port] = process.argv.slice(2);
    if (what === 'connect-iam' || what === 'connect-oauth') {
        const mech = what === 'connect-iam' ? 'AWS_MSK_IAM' : 'OAUTHBEARER';
        process.stdout.write((await connect(mech, region, host, port)) + '\n');
    } else if (what === 'token' && region) {
        process.stdout.write((await token(region)) + '\n');
    } else if (what === 'payload' && region && host) {
        process.stdout.write((await payload(region, host)) + '\n');
    } else {
        process.stderr.write('usage: sign.js token <region> | payload <region> <host> | ' +
            'connect-iam|connect-oauth <region> <host> <port>\n');
        process.exit(2);
    }
}

main().catch((e) => {
    process.stderr.write(`sign.js: ${e.message}\n`);
    process.exit(1);
});
