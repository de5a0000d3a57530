/**
 * Handler for `email.send`: sends one plain-text email over SMTP
 * (config.smtpUrl) with nodemailer, at most once per task.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';
import { emailSend } from '@conveyor/shared';
import { defineHandler } from './handler.js';

export interface EmailSendResult {
  readonly messageId: string;
  readonly accepted: string[];
  readonly rejected: string[];
}

/**
 * Each phase of an SMTP exchange gets 10 s: a dead or stalled server then
 * fails the attempt well inside the task's 30 s soft limit, and the retry
 * policy takes over, instead of the task hanging until the hard limit.
 */
const SMTP_TIMEOUT_MS = 10_000;

// One transport per SMTP URL: it is cheap to keep and parsing options per
// task would be waste. Not pooled, so no idle socket outlives a send and
// keeps the process from exiting.
const transports = new Map<string, Transporter<SMTPTransport.SentMessageInfo>>();

function transportFor(smtpUrl: string): Transporter<SMTPTransport.SentMessageInfo> {
  let transport = transports.get(smtpUrl);
  if (transport === undefined) {
    transport = nodemailer.createTransport({
      url: smtpUrl,
      connectionTimeout: SMTP_TIMEOUT_MS,
      greetingTimeout: SMTP_TIMEOUT_MS,
      socketTimeout: SMTP_TIMEOUT_MS,
      dnsTimeout: SMTP_TIMEOUT_MS,
    });
    transports.set(smtpUrl, transport);
  }
  return transport;
}

/** Closes every cached transport; for shutdown and tests. */
export function closeEmailTransports(): void {
  for (const transport of transports.values()) transport.close();
  transports.clear();
}

/** The domain of the sender's address, so the Message-ID looks like one the sender issued. */
function senderDomain(from: string): string {
  const match = /@([^\s<>@]+)>?\s*$/.exec(from);
  return match?.[1] ?? 'conveyor.invalid';
}

function addressOf(recipient: string | Mail.Address): string {
  return typeof recipient === 'string' ? recipient : recipient.address;
}

export const emailSendHandler = defineHandler(
  emailSend,
  async ({ to, subject, text }, context): Promise<EmailSendResult> => {
    // Nodemailer cannot abort a send midway, and abandoning one could still
    // deliver the mail and then retry it; so honour the signal only before
    // starting, and rely on the timeouts above to bound the send.
    context.signal.throwIfAborted();
    const { smtpUrl, smtpFrom } = context.config;
    // At most once per task: a redelivery after the mail went out returns the
    // first send's result instead of mailing again (effects/once.ts).
    return context.once('smtp.send', async () => {
      const info = await transportFor(smtpUrl).sendMail({
        from: smtpFrom,
        to,
        subject,
        text,
        // Derived from the task id, so every retry of one task carries the same
        // Message-ID and a receiver can drop the duplicates.
        messageId: `<${context.id}@${senderDomain(smtpFrom)}>`,
        headers: { 'X-Conveyor-Task-Id': context.id },
      });
      return {
        messageId: info.messageId,
        accepted: info.accepted.map(addressOf),
        rejected: info.rejected.map(addressOf),
      };
    });
  },
);
