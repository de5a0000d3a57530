/**
 * An SMTP server in this process that keeps every mail it accepts, for tests
 * of `email.send`: loopback only, no TLS, no authentication.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** The envelope's MAIL FROM address; undefined for the null sender. */
  from: string | undefined;
  /** The envelope's RCPT TO addresses. */
  to: string[];
  /** The Subject header ('' when there is none). */
  subject: string;
  /** Header values by lower-case name, unfolded; the first one where a name repeats. */
  headers: Record<string, string>;
  /** The whole message as the client sent it, CRLF line ends included. */
  raw: string;
}

export interface SmtpSink {
  /** `smtp://127.0.0.1:<port>`, for SMTP_URL. */
  url: string;
  /** Mails accepted so far, in order. */
  mails: ReceivedMail[];
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  /**
   * Runs once a mail's data is in and before the server answers 250: the
   * mail is kept (and the client answered) only when it has resolved. Use it
   * to slow the server down or to hold a send in flight.
   */
  beforeAccept?: (mail: ReceivedMail) => void | Promise<void>;
}

/** Header section of a raw message, unfolded, by lower-case name. */
function parseHeaders(raw: string): Record<string, string> {
  const end = raw.search(/\r?\n\r?\n/);
  const section = (end === -1 ? raw : raw.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of section.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!Object.hasOwn(headers, name)) headers[name] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Starts the server on a free loopback port. */
export async function startSmtpSink({ beforeAccept }: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const headers = parseHeaders(raw);
        const { mailFrom, rcptTo } = session.envelope;
        const mail: ReceivedMail = {
          from: mailFrom === false ? undefined : mailFrom.address,
          to: rcptTo.map((r) => r.address),
          subject: headers.subject ?? '',
          headers,
          raw,
        };
        Promise.resolve()
          .then(() => beforeAccept?.(mail))
          .then(
            () => {
              mails.push(mail);
              callback();
            },
            (error: Error) => callback(error),
          );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => undefined); // a client killed mid-session is expected in these tests
  return {
    url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
