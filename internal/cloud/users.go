package cloud

import (
	"context"
	"errors"
	"net/http"

	"github.com/alexedwards/argon2id"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
)

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	us, err := s.store.ListUsers(r.Context(), p.Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]api.User, 0, len(us))
	for _, u := range us {
		out = append(out, api.User{ID: u.ID, Name: u.Name, Role: string(u.Role), Tenant: p.Tenant.Domain, CreatedAt: u.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireGlobalAdmin(p, "users"); err != nil {
		return err
	}
	var in api.CreateUserRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	name, err := tenancy.CheckUserName("bad_user_name", in.Name, p.Tenant.Domain)
	if err != nil {
		return err
	}
	role := store.Role(in.Role)
	if !role.Valid() {
		return problem.Newf(http.StatusBadRequest, "bad_role", "use global-admin, app-admin or user", "%q is not a role", tenancy.Truncate(in.Role, 40))
	}
	if err := tenancy.CheckPassword(in.Password); err != nil {
		return err
	}
	hash, err := s.hashPasswordFor(r.Context(), sourceOf(r.RemoteAddr), in.Password)
	if err != nil {
		return err
	}
	u := store.User{ID: tenancy.NewID("u"), TenantID: p.Tenant.ID, Name: name, Role: role, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(r.Context(), u); errors.Is(err, store.ErrConflict) {
		return problem.Newf(http.StatusConflict, "user_exists", "choose another name", "The user %s already exists", name)
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.User{ID: u.ID, Name: u.Name, Role: string(u.Role), Tenant: p.Tenant.Domain, CreatedAt: u.CreatedAt})
	return nil
}

// hashPasswordFor makes an argon2id hash for a request from source src,
// in a hashing slot of the sign-in guard.
func (s *Server) hashPasswordFor(ctx context.Context, src, p string) (hash string, err error) {
	if serr := s.signin.hash(ctx, src, func() { hash, err = argon2id.CreateHash(p, argon2id.DefaultParams) }); serr != nil {
		return "", serr
	}
	return hash, err
}
