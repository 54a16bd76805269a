package testenv

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// AzuriteAccount is a storage account that an Azurite server knows: its name
// and its base64 shared key.
type AzuriteAccount struct {
	Name, Key string
}

// AzuriteDevAccount is Azurite's well-known development account. Its key is
// published in Azure's documentation; tests treat it as a secret all the
// same.
var AzuriteDevAccount = AzuriteAccount{
	Name: "devstoreaccount1",
	Key:  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
}

// Azurite starts Azurite's blob service (image "azurite") and returns it
// with the blob endpoint of its first account,
// http://127.0.0.1:PORT/ACCOUNT. With no accounts it serves
// AzuriteDevAccount; otherwise exactly the accounts given (AZURITE_ACCOUNTS).
// Data lives on the container's disk, so it survives Stop and Restart.
func Azurite(t testing.TB, accounts ...AzuriteAccount) (*Server, string) {
	t.Helper()
	first := AzuriteDevAccount
	if len(accounts) > 0 {
		first = accounts[0]
	}
	s := Start(t, Spec{
		Image: "azurite",
		Cmd: func(s *Server) []string {
			// --skipApiVersionCheck: the SDK may speak a newer REST API
			// version than the pinned Azurite knows; --loose: ignore the
			// headers Azurite does not implement.
			return []string{"--blobHost", s.Bind, "--blobPort", s.Port(0), "--location", "/data",
				"--skipApiVersionCheck", "--loose", "--disableTelemetry"}
		},
		Env: func(*Server) map[string]string {
			if len(accounts) == 0 {
				return nil
			}
			var b strings.Builder
			for i, a := range accounts {
				if i > 0 {
					b.WriteByte(';')
				}
				b.WriteString(a.Name + ":" + a.Key)
			}
			return map[string]string{"AZURITE_ACCOUNTS": b.String()}
		},
		Ready: func(ctx context.Context, s *Server) error {
			return azuriteAnswers(ctx, "http://"+s.Addr(0)+"/"+first.Name)
		},
	})
	return s, "http://" + s.Addr(0) + "/" + first.Name
}

// azuriteAnswers reports whether the blob service answers HTTP at all: an
// unauthenticated request gets a 403, which is an answer.
func azuriteAnswers(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?comp=list", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("azurite answered %s", resp.Status)
	}
	return nil
}
