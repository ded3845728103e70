package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyward/keyward/internal/vaulttest"
)

// awsIAMFile has the users of the AWS KMS API tests: "aws-app" may make
// data keys on every key (RustFS's every-key resource) and describe key
// "app-1" (a regional key ARN as AWS writes it; the region is not
// checked), nothing else.
const awsIAMFile = `{"users": [
  {"access_key": "aws-app", "secret_key": "aws-app-secret", "policies": ["aws-app"]}],
 "policies": {"aws-app": {"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": "arn:aws:kms:::*"},
  {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "arn:aws:kms:us-west-2:%s:key/app-1"}]}}}`

// startAWSServer starts a server with the AWS tests' IAM file and account.
func startAWSServer(t *testing.T, account string) *server {
	path := filepath.Join(t.TempDir(), "iam.json")
	if err := os.WriteFile(path, []byte(strings.Replace(awsIAMFile, "%s", account, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, serverOpts{Args: []string{"--iam-file", path, "--aws-account-id", account}})
}

// TestAWSKMSAPI drives every operation of the AWS KMS API with the AWS SDK
// for Go v2 against the real binary, on the local backend and on both
// Vault backends (a real Vault), with every error case checked on the
// SDK's typed exceptions, and the admin API on the same keys, blobs and
// aliases (one key service, two front doors).
func TestAWSKMSAPI(t *testing.T) {
	t.Parallel()
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		srv := startAWSServer(t, "111122223333")
		admin := srv.client(t)
		configureLocal(t, admin, filepath.Join(srv.DataDir, "keys"), "", nil)
		startKMS(t, admin)
		runAWSKMS(t, srv, admin, "111122223333")
	})
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := startAWSServer(t, "000000000000")
			admin := srv.client(t)
			cfg := vaultConfig(v.Addr, backend, vaultPrefix(t), tokenAuth(v.Token))
			if backend == "vault-transit" {
				cfg["mount_path"] = v.NewTransitMount()
			}
			configureVault(t, admin, cfg)
			startVaultKMS(t, admin)
			runAWSKMS(t, srv, admin, "000000000000")
		})
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func runAWSKMS(t *testing.T, srv *server, admin *client, account string) {
	ctx := awsCtx(t)
	c := kmsClient(srv, srv.AccessKey, srv.SecretKey, awsRegion)
	arnPrefix := "arn:aws:kms:" + awsRegion + ":" + account + ":key/"

	// CreateKey and DescribeKey by id, ARN, alias and alias ARN.
	created, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("aws door"),
		Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("blue")}, {TagKey: aws.String("name"), TagValue: aws.String("not an id")}}})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	md := created.KeyMetadata
	id := aws.ToString(md.KeyId)
	if !uuidV4.MatchString(id) || aws.ToString(md.Arn) != arnPrefix+id || aws.ToString(md.AWSAccountId) != account ||
		md.KeyState != types.KeyStateEnabled || !md.Enabled || md.KeySpec != types.KeySpecSymmetricDefault ||
		md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.CreationDate == nil || md.CreationDate.IsZero() || aws.ToString(md.Description) != "aws door" {
		t.Fatalf("CreateKey metadata: %+v", md)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws-door"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	for _, ref := range []string{id, arnPrefix + id, "alias/aws-door", "arn:aws:kms:us-east-2:" + account + ":alias/aws-door"} {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		if err != nil || aws.ToString(d.KeyMetadata.KeyId) != id {
			t.Errorf("DescribeKey %s: %v %+v", ref, err, d)
		}
	}

	// Two more keys, one made through the admin API with an id of ours.
	second := aws.ToString(must[*kms.CreateKeyOutput](t, "CreateKey second")(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)
	createKey(t, admin, "app-1")

	// ListKeys pages through every key.
	var listed []string
	in := &kms.ListKeysInput{Limit: aws.Int32(2)}
	for pages := 0; ; pages++ {
		out, err := c.ListKeys(ctx, in)
		if err != nil || pages > 20 {
			t.Fatalf("ListKeys: %v (page %d)", err, pages)
		}
		for _, k := range out.Keys {
			listed = append(listed, aws.ToString(k.KeyId))
			if aws.ToString(k.KeyArn) != arnPrefix+aws.ToString(k.KeyId) {
				t.Errorf("ListKeys ARN: %s", aws.ToString(k.KeyArn))
			}
		}
		if !out.Truncated {
			break
		}
		in.Marker = out.NextMarker
	}
	for _, want := range []string{id, second, "app-1"} {
		if !slices.Contains(listed, want) {
			t.Errorf("ListKeys: %s missing from %v", want, listed)
		}
	}

	// Tags, description.
	must[*kms.TagResourceOutput](t, "TagResource")(c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id),
		Tags: []types.Tag{{TagKey: aws.String("env"), TagValue: aws.String("e2e")}}}))
	must[*kms.UntagResourceOutput](t, "UntagResource")(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(id), TagKeys: []string{"name"}}))
	var tags []string
	tagIn := &kms.ListResourceTagsInput{KeyId: aws.String(id), Limit: aws.Int32(1)}
	for pages := 0; pages < 5; pages++ {
		out := must[*kms.ListResourceTagsOutput](t, "ListResourceTags")(c.ListResourceTags(ctx, tagIn))
		for _, tg := range out.Tags {
			tags = append(tags, aws.ToString(tg.TagKey)+"="+aws.ToString(tg.TagValue))
		}
		if !out.Truncated {
			break
		}
		tagIn.Marker = out.NextMarker
	}
	if strings.Join(tags, ",") != "env=e2e,team=blue" {
		t.Errorf("ListResourceTags: %v", tags)
	}
	must[*kms.UpdateKeyDescriptionOutput](t, "UpdateKeyDescription")(c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String("new")}))
	if st, m, raw := describe(t, admin, id); st != 200 || str(m, "description") != "new" || !strings.Contains(string(raw), `"env":"e2e"`) {
		t.Errorf("admin describe after AWS changes: %d %s", st, raw)
	}

	// Rotation.
	must[*kms.EnableKeyRotationOutput](t, "EnableKeyRotation")(c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)}))
	rs := must[*kms.GetKeyRotationStatusOutput](t, "GetKeyRotationStatus")(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)}))
	if !rs.KeyRotationEnabled || aws.ToInt32(rs.RotationPeriodInDays) != 90 || rs.NextRotationDate == nil {
		t.Errorf("GetKeyRotationStatus: %+v", rs)
	}
	// A blob under version 1 still opens after rotation.
	ectx := map[string]string{"purpose": "aws e2e", "tenant": "t1"}
	enc := must[*kms.EncryptOutput](t, "Encrypt")(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/aws-door"), Plaintext: []byte("secret text"), EncryptionContext: ectx}))
	if aws.ToString(enc.KeyId) != arnPrefix+id || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Errorf("Encrypt: %+v", enc)
	}
	must[*kms.RotateKeyOnDemandOutput](t, "RotateKeyOnDemand")(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}))
	rots := must[*kms.ListKeyRotationsOutput](t, "ListKeyRotations")(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)}))
	if len(rots.Rotations) != 1 || rots.Rotations[0].RotationDate == nil || aws.ToString(rots.Rotations[0].KeyId) != arnPrefix+id {
		t.Errorf("ListKeyRotations: %+v", rots)
	}
	must[*kms.DisableKeyRotationOutput](t, "DisableKeyRotation")(c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)}))
	if rs, _ := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)}); rs == nil || rs.KeyRotationEnabled {
		t.Errorf("rotation still enabled: %+v", rs)
	}
	dec := must[*kms.DecryptOutput](t, "Decrypt")(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ectx}))
	if string(dec.Plaintext) != "secret text" || aws.ToString(dec.KeyId) != arnPrefix+id {
		t.Errorf("Decrypt after rotation: %q %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}

	// Data keys: by spec and by size, by alias, decrypted with KeyId as an
	// alias and as an ARN; without plaintext; re-encrypted to another key.
	dk := must[*kms.GenerateDataKeyOutput](t, "GenerateDataKey")(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/aws-door"), KeySpec: types.DataKeySpecAes256, EncryptionContext: ectx}))
	if len(dk.Plaintext) != 32 || aws.ToString(dk.KeyId) != arnPrefix+id {
		t.Fatalf("GenerateDataKey: %d bytes, %s", len(dk.Plaintext), aws.ToString(dk.KeyId))
	}
	if n := len(must[*kms.GenerateDataKeyOutput](t, "GenerateDataKey 64")(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(64)})).Plaintext); n != 64 {
		t.Errorf("NumberOfBytes 64: %d bytes", n)
	}
	for _, ref := range []string{"alias/aws-door", arnPrefix + id} {
		out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ectx, KeyId: aws.String(ref)})
		if err != nil || !bytes.Equal(out.Plaintext, dk.Plaintext) {
			t.Errorf("Decrypt with KeyId %s: %v", ref, err)
		}
	}
	wp := must[*kms.GenerateDataKeyWithoutPlaintextOutput](t, "GenerateDataKeyWithoutPlaintext")(c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes128}))
	if out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.CiphertextBlob}); err != nil || len(out.Plaintext) != 16 {
		t.Errorf("Decrypt of a key made without plaintext: %v", err)
	}
	re := must[*kms.ReEncryptOutput](t, "ReEncrypt")(c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: dk.CiphertextBlob, SourceEncryptionContext: ectx,
		DestinationKeyId: aws.String(second), DestinationEncryptionContext: map[string]string{"moved": "yes"}}))
	if aws.ToString(re.KeyId) != arnPrefix+second || aws.ToString(re.SourceKeyId) != arnPrefix+id {
		t.Errorf("ReEncrypt: %+v", re)
	}
	if out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"moved": "yes"}}); err != nil || !bytes.Equal(out.Plaintext, dk.Plaintext) {
		t.Errorf("Decrypt of the re-encrypted blob: %v", err)
	}
	if r := must[*kms.GenerateRandomOutput](t, "GenerateRandom")(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(48)})); len(r.Plaintext) != 48 {
		t.Errorf("GenerateRandom: %d bytes", len(r.Plaintext))
	}

	// One key service: blobs cross the doors both ways with the same
	// context, aliases made on either are seen on the other, and a key
	// disabled on one is refused on the other.
	if st, pt, raw := decrypt(t, admin, b64(dk.CiphertextBlob), ectx); st != 200 || !bytes.Equal(pt, dk.Plaintext) {
		t.Errorf("admin decrypt of an AWS blob: %d %s", st, short(raw))
	}
	if st, _, raw := decrypt(t, admin, b64(dk.CiphertextBlob), map[string]string{"purpose": "aws e2e"}); st != 400 {
		t.Errorf("admin decrypt of an AWS blob with another context: %d %s", st, short(raw))
	}
	adk := generate(t, admin, "app-1", ectx)
	if out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: unb64(t, "blob", adk.Blob), EncryptionContext: ectx}); err != nil || !bytes.Equal(out.Plaintext, adk.Plaintext) || aws.ToString(out.KeyId) != arnPrefix+"app-1" {
		t.Errorf("AWS decrypt of an admin blob: %v", err)
	}
	st, _, raw := admin.do("POST", "/kms/aliases", map[string]any{"alias_name": "alias/from-admin", "target_key_id": "app-1"})
	wantStatus(t, "admin create alias", st, raw, 200)
	al := must[*kms.ListAliasesOutput](t, "ListAliases")(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String("app-1")}))
	if len(al.Aliases) != 1 || aws.ToString(al.Aliases[0].AliasName) != "alias/from-admin" || aws.ToString(al.Aliases[0].TargetKeyId) != "app-1" ||
		aws.ToString(al.Aliases[0].AliasArn) != "arn:aws:kms:"+awsRegion+":"+account+":alias/from-admin" {
		t.Errorf("ListAliases of app-1: %+v", al.Aliases)
	}
	must[*kms.UpdateAliasOutput](t, "UpdateAlias")(c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/from-admin"), TargetKeyId: aws.String(second)}))
	if st, m, _ := describe(t, admin, second); st != 200 || !strings.Contains(strings.Join(anyStrings(m["aliases"]), ","), "alias/from-admin") {
		t.Errorf("admin describe of the alias's new key: %d %v", st, m["aliases"])
	}
	must[*kms.DeleteAliasOutput](t, "DeleteAlias")(c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/from-admin")}))
	if all := must[*kms.ListAliasesOutput](t, "ListAliases all")(c.ListAliases(ctx, &kms.ListAliasesInput{})); len(all.Aliases) != 1 || aws.ToString(all.Aliases[0].AliasName) != "alias/aws-door" {
		t.Errorf("ListAliases after DeleteAlias: %+v", all.Aliases)
	}
	st, _, raw = admin.do("POST", "/kms/keys/disable", map[string]any{"key_id": "app-1"})
	wantStatus(t, "admin disable", st, raw, 200)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: unb64(t, "blob", adk.Blob), EncryptionContext: ectx})
	wantTyped[*types.DisabledException](t, "AWS decrypt on a key disabled through the admin API", err)
	must[*kms.EnableKeyOutput](t, "EnableKey")(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String("app-1")}))
	if st, _, raw := decrypt(t, admin, adk.Blob, ectx); st != 200 {
		t.Errorf("admin decrypt after AWS EnableKey: %d %s", st, short(raw))
	}
	must[*kms.DisableKeyOutput](t, "DisableKey")(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}))
	if st, _, raw := decrypt(t, admin, b64(dk.CiphertextBlob), ectx); st != 409 || !strings.Contains(string(raw), "InvalidKeyState") {
		t.Errorf("admin decrypt on a key disabled through the AWS API: %d %s", st, short(raw))
	}
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	wantTyped[*types.DisabledException](t, "GenerateDataKey on a disabled key", err)
	must[*kms.EnableKeyOutput](t, "EnableKey")(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}))

	// Deletion: the window, the pending state, and CancelKeyDeletion,
	// which leaves the key Disabled on this door.
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(second), PendingWindowInDays: aws.Int32(6)})
	wantCode(t, "ScheduleKeyDeletion with a 6-day window", err, "ValidationException")
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(second), PendingWindowInDays: aws.Int32(31)})
	wantCode(t, "ScheduleKeyDeletion with a 31-day window", err, "ValidationException")
	sd := must[*kms.ScheduleKeyDeletionOutput](t, "ScheduleKeyDeletion")(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(second), PendingWindowInDays: aws.Int32(7)}))
	if sd.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(sd.PendingWindowInDays) != 7 || sd.DeletionDate == nil || aws.ToString(sd.KeyId) != arnPrefix+second {
		t.Errorf("ScheduleKeyDeletion: %+v", sd)
	}
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(second), Plaintext: []byte("x")})
	wantTyped[*types.KMSInvalidStateException](t, "Encrypt on a pending key", err)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(second)})
	wantTyped[*types.KMSInvalidStateException](t, "ScheduleKeyDeletion of a pending key", err)
	if cd := must[*kms.CancelKeyDeletionOutput](t, "CancelKeyDeletion")(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(second)})); aws.ToString(cd.KeyId) != arnPrefix+second {
		t.Errorf("CancelKeyDeletion: %+v", cd)
	}
	if d := must[*kms.DescribeKeyOutput](t, "DescribeKey")(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(second)})); d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.DeletionDate != nil {
		t.Errorf("after CancelKeyDeletion: %+v", d.KeyMetadata)
	}
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(second)})
	wantTyped[*types.KMSInvalidStateException](t, "CancelKeyDeletion of a key not pending", err)

	// Every error case, on the SDK's typed exceptions.
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("no-such-key")})
	wantTyped[*types.NotFoundException](t, "DescribeKey of an unknown key", err)
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/no-such-alias"), KeySpec: types.DataKeySpecAes256})
	wantTyped[*types.NotFoundException](t, "GenerateDataKey with an unknown alias", err)
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("arn:aws:kms:" + awsRegion + ":999999999999:key/" + id)})
	wantTyped[*types.NotFoundException](t, "DescribeKey of another account's ARN", err)
	tampered := bytes.Clone(dk.CiphertextBlob)
	tampered[len(tampered)-1] ^= 1
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: ectx})
	wantTyped[*types.InvalidCiphertextException](t, "Decrypt of a tampered blob", err)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "other"}})
	wantTyped[*types.InvalidCiphertextException](t, "Decrypt with the wrong context", err)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ectx, KeyId: aws.String(second)})
	wantTyped[*types.IncorrectKeyException](t, "Decrypt naming another key", err)
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: dk.CiphertextBlob, SourceEncryptionContext: ectx, SourceKeyId: aws.String("app-1"), DestinationKeyId: aws.String(id)})
	wantTyped[*types.IncorrectKeyException](t, "ReEncrypt naming another source key", err)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/has space"), TargetKeyId: aws.String(id)})
	wantTyped[*types.InvalidAliasNameException](t, "CreateAlias with a bad name", err)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/s3"), TargetKeyId: aws.String(id)})
	wantTyped[*types.InvalidAliasNameException](t, "CreateAlias with a reserved name", err)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws-door"), TargetKeyId: aws.String(second)})
	wantTyped[*types.AlreadyExistsException](t, "CreateAlias with a taken name", err)
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{Marker: aws.String("not-a-marker")})
	wantTyped[*types.InvalidMarkerException](t, "ListKeys with a bad marker", err)
	_, err = c.ListAliases(ctx, &kms.ListAliasesInput{Marker: aws.String("bm90LWEtbWFya2Vy")})
	wantTyped[*types.InvalidMarkerException](t, "ListAliases with a bad marker", err)
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(1025)})
	wantCode(t, "GenerateDataKey of 1025 bytes", err, "ValidationException")
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id)})
	wantCode(t, "GenerateDataKey without KeySpec or NumberOfBytes", err, "ValidationException")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: make([]byte, 4097)})
	wantCode(t, "Encrypt of 4097 bytes", err, "ValidationException")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	wantTyped[*types.UnsupportedOperationException](t, "CreateKey of an RSA key", err)
	_, err = c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String("arn:aws:iam::" + account + ":role/x"), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	wantCode(t, "CreateGrant", err, "UnsupportedOperationException")
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(id), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	wantCode(t, "Sign", err, "UnsupportedOperationException")

	// Authentication and authorization errors are AWS's too.
	app := kmsClient(srv, "aws-app", "aws-app-secret", "us-west-2")
	if _, err := app.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256}); err != nil {
		t.Errorf("aws-app GenerateDataKey (resource arn:aws:kms:::*): %v", err)
	}
	if _, err := app.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("app-1")}); err != nil {
		t.Errorf("aws-app DescribeKey app-1 (a us-west-2 key ARN, signed for us-west-2): %v", err)
	}
	if _, err := kmsClient(srv, "aws-app", "aws-app-secret", "ap-south-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("app-1")}); err != nil {
		t.Errorf("aws-app DescribeKey app-1 signed for another region: %v", err)
	}
	_, err = app.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	wantCode(t, "aws-app DescribeKey of another key", err, "AccessDeniedException")
	_, err = app.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("no-such-key")})
	wantCode(t, "aws-app DescribeKey of a missing key", err, "AccessDeniedException")
	_, err = app.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ectx})
	wantCode(t, "aws-app Decrypt", err, "AccessDeniedException")
	_, err = app.ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, "aws-app ListKeys", err, "AccessDeniedException")
	_, err = kmsClient(srv, "nobody", "nobody-secret", awsRegion).ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, "unknown access key", err, "UnrecognizedClientException")
	_, err = kmsClient(srv, "aws-app", "wrong-secret", awsRegion).ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, "wrong secret", err, "InvalidSignatureException")
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
