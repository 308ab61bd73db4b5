// An SQS message being handled is kept hidden from other receives: its visibility timeout is extended
// every half of it until the handler is done (the message deleted, or left for SQS to show again).
import { ChangeMessageVisibilityCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs'

/** Extends `message`'s visibility every half `visibilitySeconds`; returns what stops that. */
export function keepMessageHidden(
  sqs: SQSClient,
  queueUrl: string,
  message: Message,
  visibilitySeconds: number,
  onError: (err: unknown) => void,
): () => void {
  const timer = setInterval(
    () => {
      sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queueUrl,
            ReceiptHandle: message.ReceiptHandle,
            VisibilityTimeout: visibilitySeconds,
          }),
        )
        .catch(onError)
    },
    Math.max(500, (visibilitySeconds * 1000) / 2),
  )
  timer.unref()
  return () => clearInterval(timer)
}
