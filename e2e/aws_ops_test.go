package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestAWSAuditAndMetrics: the AWS door's requests are audited and counted
// like the admin API's, one route per operation, and every target the
// server does not serve shares one route: what a client puts in
// X-Amz-Target never becomes a label or a route.
func TestAWSAuditAndMetrics(t *testing.T) {
	t.Parallel()
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	srv := startServer(t, serverOpts{Args: []string{"--dev", "--audit-log", auditPath}})
	admin := srv.client(t)
	ctx := awsCtx(t)
	c := kmsClient(srv, srv.AccessKey, srv.SecretKey, awsRegion)
	before := scrape(t, admin)
	var secrets []string
	for i := 0; i < 3; i++ {
		dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("keyward-default"), KeySpec: types.DataKeySpecAes256})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, b64(dk.Plaintext))
	}
	_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("missing")})
	wantTyped[*types.NotFoundException](t, "DescribeKey missing", err)
	_, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String("keyward-default"), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantCode(t, "Sign", err, "UnsupportedOperationException")
	evil := `TrentService.Evil"} 1`
	st, m, raw := admin.doAbs("POST", "/", map[string]any{}, withService("kms"), withBeforeSign(func(r *http.Request) {
		r.Header.Set("X-Amz-Target", evil)
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	}))
	if st != 400 || m["__type"] != "UnsupportedOperationException" {
		t.Errorf("unknown target: %d %s", st, short(raw))
	}
	after := scrape(t, admin)
	for series, want := range map[string]float64{
		`keyward_http_requests_total{method="POST",route="TrentService.GenerateDataKey",status="200"}`: 3,
		`keyward_http_requests_total{method="POST",route="TrentService.DescribeKey",status="400"}`:     1,
		`keyward_http_requests_total{method="POST",route="TrentService.(unsupported)",status="400"}`:   2,
	} {
		if d := after[series] - before[series]; d != want {
			t.Errorf("%s moved by %v, want %v", series, d, want)
		}
	}
	for k := range after {
		if strings.Contains(k, "Evil") || strings.Contains(k, "TrentService.Sign") {
			t.Errorf("a client's target became a label: %s", k)
		}
	}
	if code := srv.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	raw, err = os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Fatal("the audit log holds a data key")
		}
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		route, _ := l["route"].(string)
		if !strings.HasPrefix(route, "TrentService.") {
			continue
		}
		counts[route]++
		switch route {
		case "TrentService.GenerateDataKey":
			if l["action"] != "kms:GenerateDataKey" || l["key_id"] != "keyward-default" || l["status"] != 200.0 || l["access_key"] != srv.AccessKey {
				t.Errorf("GenerateDataKey line: %v", l)
			}
		case "TrentService.DescribeKey":
			if l["code"] != "NotFoundException" || l["key_id"] != "missing" {
				t.Errorf("DescribeKey line: %v", l)
			}
		case "TrentService.(unsupported)":
			if l["code"] != "UnsupportedOperationException" {
				t.Errorf("unsupported line: %v", l)
			}
		default:
			t.Errorf("unexpected route: %v", l)
		}
	}
	if counts["TrentService.GenerateDataKey"] != 3 || counts["TrentService.DescribeKey"] != 1 || counts["TrentService.(unsupported)"] != 2 {
		t.Errorf("audit lines by route: %v", counts)
	}
}
