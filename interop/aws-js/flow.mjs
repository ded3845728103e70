// The flow a new user of Keyward's AWS KMS API runs with the AWS SDK for
// JavaScript v3: create a key and an alias, make a data key, decrypt it by
// alias, re-encrypt it to a second key, schedule and cancel the deletion.
// e2e/aws_clients_test.go runs it against the real server:
//   node flow.mjs <endpoint>    (credentials from AWS_ACCESS_KEY_ID etc.)
// It prints one JSON line of results and exits non-zero on any failure.
import {
  KMSClient, CreateKeyCommand, CreateAliasCommand, GenerateDataKeyCommand,
  DecryptCommand, ReEncryptCommand, ScheduleKeyDeletionCommand,
  CancelKeyDeletionCommand, DescribeKeyCommand, NotFoundException,
  InvalidCiphertextException,
} from "@aws-sdk/client-kms";

const endpoint = process.argv[2];
const kms = new KMSClient({ endpoint, region: process.env.AWS_REGION || "us-east-1", maxAttempts: 1 });
const context = { app: "keyward-js", purpose: "e2e" };
const equal = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const check = (ok, what) => { if (!ok) throw new Error("check failed: " + what); };

const key = (await kms.send(new CreateKeyCommand({ Description: "js sdk" }))).KeyMetadata;
const alias = "alias/js-" + key.KeyId.slice(0, 8);
await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: alias, KeySpec: "AES_256", EncryptionContext: context }));
check(dk.Plaintext.length === 32 && dk.KeyId === key.Arn, "GenerateDataKey");

const byAlias = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, KeyId: alias, EncryptionContext: context }));
check(equal(byAlias.Plaintext, dk.Plaintext), "Decrypt by alias");

const second = (await kms.send(new CreateKeyCommand({}))).KeyMetadata;
const moved = await kms.send(new ReEncryptCommand({
  CiphertextBlob: dk.CiphertextBlob, SourceEncryptionContext: context,
  DestinationKeyId: second.KeyId, DestinationEncryptionContext: { moved: "yes" },
}));
check(moved.KeyId === second.Arn && moved.SourceKeyId === key.Arn, "ReEncrypt");
const reopened = await kms.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob, EncryptionContext: { moved: "yes" } }));
check(equal(reopened.Plaintext, dk.Plaintext), "Decrypt after ReEncrypt");

let typedErrors = 0;
try {
  await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { app: "other" } }));
} catch (e) {
  check(e instanceof InvalidCiphertextException, "wrong context: " + e.name);
  typedErrors++;
}
try {
  await kms.send(new DescribeKeyCommand({ KeyId: "alias/js-no-such-alias" }));
} catch (e) {
  check(e instanceof NotFoundException, "unknown alias: " + e.name);
  typedErrors++;
}

const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: second.KeyId, PendingWindowInDays: 7 }));
check(scheduled.KeyState === "PendingDeletion" && scheduled.DeletionDate instanceof Date, "ScheduleKeyDeletion");
await kms.send(new CancelKeyDeletionCommand({ KeyId: second.KeyId }));
const after = (await kms.send(new DescribeKeyCommand({ KeyId: second.Arn }))).KeyMetadata;
check(after.KeyState === "Disabled", "CancelKeyDeletion leaves the key Disabled");

console.log(JSON.stringify({
  keyId: key.KeyId, arn: key.Arn, alias, secondState: after.KeyState, typedErrors,
  blob: Buffer.from(dk.CiphertextBlob).toString("base64"),
  plaintext: Buffer.from(dk.Plaintext).toString("base64"),
}));
