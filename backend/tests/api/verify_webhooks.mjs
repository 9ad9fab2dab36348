// Verifies webhook deliveries with the Standard Webhooks reference library (npm `standardwebhooks`), not
// with the server's own code. Reads {"secret", "deliveries": [{"headers": {...}, "body"}]} on stdin; prints
// each verified payload as one JSON line; exits 1 at the first delivery that does not verify, or when a
// tampered copy of one does.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, deliveries } = JSON.parse(input);
const webhook = new Webhook(secret);
for (const [i, { headers, body }] of deliveries.entries()) {
  try {
    console.log(JSON.stringify(webhook.verify(body, headers)));
  } catch (e) {
    console.error(`delivery ${i} does not verify: ${e.message}`);
    process.exit(1);
  }
  let tampered = true;
  try {
    webhook.verify(body + " ", headers);
    tampered = false;
  } catch {}
  if (!tampered) {
    console.error(`delivery ${i}: a changed body still verifies`);
    process.exit(1);
  }
}
