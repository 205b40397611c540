/**
 * The floor any Fastify proxy can reach: @fastify/http-proxy in front of the upstream, with no
 * session logic and no logging. Prints {"event":"listening","port":N}.
 */
import httpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const upstream = process.env.UPSTREAM_ORIGIN;
if (!upstream) throw new Error('UPSTREAM_ORIGIN is required');
const app = Fastify({ logger: false });
await app.register(httpProxy, { upstream, prefix: '/', http2: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(JSON.stringify({ event: 'listening', port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
process.on('SIGTERM', () => process.exit(0));
