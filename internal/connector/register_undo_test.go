package connector

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// TestRegisterUndoneWhenStateCannotBeWritten: the cloud registered the
// connector but its files could not be written; the connector is deleted
// again through the administrator's sign-in, or, registered with a token
// (which may delete nothing), named for an administrator (issue 20,
// defect 1).
func TestRegisterUndoneWhenStateCannotBeWritten(t *testing.T) {
	ca, _ := pki.NewCA("Sallyport cloud CA", time.Hour)
	cert, _ := ca.IssueServer([]string{"cloud.localhost"}, time.Hour)
	var mu sync.Mutex
	var deleted []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.Prefix+"/connectors/register", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.RegisterResponse{ConnectorID: "c_stray", Tenant: "contoso.com", Group: "Default", Certificate: string(ca.CertPEM)})
	})
	mux.HandleFunc("POST "+api.Prefix+"/login", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.LoginResponse{Token: "session-token"})
	})
	mux.HandleFunc("DELETE "+api.Prefix+"/connectors/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer session-token" {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		deleted = append(deleted, r.PathValue("id"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFileT(t, caFile, ca.CertPEM)
	defer SetStepHook(func(step string) error {
		if step == "files-written" {
			return problem.New(400, "state_unwritable", "check the directory's permissions and free space", "The connector cannot write trust.json (disk full)")
		}
		return nil
	})()

	tests := []struct {
		name        string
		o           RegisterOptions
		wantDeleted []string
		want        string
	}{
		{"user and password", RegisterOptions{User: "admin@contoso.com", Password: "pw"}, []string{"c_stray"},
			"so the connector c_stray the cloud had registered was deleted again"},
		{"registration token", RegisterOptions{Token: "spr_x"}, nil,
			"the connector c_stray the cloud registered meanwhile stays there; check the directory's permissions and free space; have an administrator delete it with 'sallyport admin connector delete c_stray'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			deleted = nil
			mu.Unlock()
			tt.o.CloudURL, tt.o.CAFile, tt.o.Dir = "https://cloud.localhost:"+port, caFile, t.TempDir()
			_, err := Register(context.Background(), tt.o)
			p, ok := problem.As(err)
			if !ok || p.Code != "state_unwritable" || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register = %v, want state_unwritable with %q", err, tt.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(deleted, ",") != strings.Join(tt.wantDeleted, ",") {
				t.Errorf("deleted at the cloud: %v, want %v", deleted, tt.wantDeleted)
			}
		})
	}
}
