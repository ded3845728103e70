package client_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/keyward/keyward/client"
)

// Envelope encryption: a fresh data key per object, the object encrypted
// locally, the wrapped key stored next to it.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:9000", os.Getenv("KEYWARD_ACCESS_KEY"), os.Getenv("KEYWARD_SECRET_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	objectCtx := map[string]string{"bucket": "photos", "object": "cat.jpg"}
	dk, err := c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "app-key", EncryptionContext: objectCtx})
	if err != nil {
		log.Fatal(err)
	}
	defer dk.Wipe()
	block, _ := aes.NewCipher(dk.Plaintext)
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	sealed := gcm.Seal(nonce, nonce, []byte("the object"), nil)
	// Store sealed and dk.CiphertextBlob; later, unwrap the data key:
	pt, err := c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: objectCtx})
	if err != nil {
		log.Fatal(err)
	}
	defer pt.Wipe()
	fmt.Println(len(sealed), len(pt.Plaintext))
}

// A private CA for HTTPS, retries and a per-attempt timeout.
func ExampleNew() {
	caPEM, err := os.ReadFile("/etc/keyward/ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New("https://kms.internal:9000", "ops", os.Getenv("KEYWARD_SECRET_KEY"),
		client.WithCACert(caPEM),
		client.WithRetries(5, 200*time.Millisecond),
		client.WithTimeout(30*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Status)
}

// Configure a local backend, start the service and create a key.
func ExampleClient_Configure() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:9000", "admin", os.Getenv("KEYWARD_ROOT_PASSWORD"))
	_, err := c.Configure(ctx, client.ConfigureRequest{
		BackendType:  new(client.BackendLocal),
		MasterKey:    new(os.Getenv("KEYWARD_MASTER_PASSPHRASE")),
		DefaultKeyID: new("default"),
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Start(ctx, client.StartRequest{}); err != nil && !errors.Is(err, client.ErrConflict) {
		log.Fatal(err) // ErrConflict: already running
	}
	km, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyID: "app-key", Description: "application data"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(km.KeyID, km.KeyState)
}

// Rotate the Vault token of a running service: only the fields set are
// sent and merged.
func ExampleClient_Reconfigure() {
	c, _ := client.New("http://127.0.0.1:9000", "admin", os.Getenv("KEYWARD_ROOT_PASSWORD"))
	_, err := c.Reconfigure(context.Background(), client.ConfigureRequest{
		Auth: &client.VaultAuth{Token: os.Getenv("VAULT_TOKEN")},
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Iterate over every key, page by page.
func ExampleClient_ListAllKeys() {
	c, _ := client.New("http://127.0.0.1:9000", "auditor", os.Getenv("KEYWARD_SECRET_KEY"))
	for k, err := range c.ListAllKeys(context.Background(), client.ListKeysRequest{Limit: 500}) {
		var unreadable *client.UnreadableKeysError
		if errors.As(err, &unreadable) {
			log.Printf("damaged key records: %v", unreadable.KeyIDs)
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(k.KeyID, k.KeyState)
	}
}

// Branch on the error code with errors.Is; errors.As gives the details.
func ExampleAPIError() {
	// What a call returns when the key is disabled (wrapped by the caller).
	err := fmt.Errorf("sealing the object: %w", &client.APIError{
		StatusCode: 409, Code: "InvalidKeyState", Message: `key "app-key" is Disabled`, RequestID: "0000000100000002",
	})
	switch {
	case errors.Is(err, client.ErrNotFound):
		fmt.Println("no such key")
	case errors.Is(err, client.ErrInvalidKeyState):
		fmt.Println("the key is not enabled")
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.RequestID)
	}
	// Output:
	// the key is not enabled
	// 409 0000000100000002
}

// Schedule a key's deletion, then change one's mind.
func ExampleClient_ScheduleKeyDeletion() {
	ctx := context.Background()
	c, _ := client.New("http://127.0.0.1:9000", "admin", os.Getenv("KEYWARD_ROOT_PASSWORD"))
	km, err := c.ScheduleKeyDeletion(ctx, "old-key", 30)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("destroyed after", km.DeletionDate)
	if _, err := c.CancelKeyDeletion(ctx, "old-key"); err != nil {
		log.Fatal(err)
	}
}
