// Package tenancy holds the rules a tenant's names and domains follow,
// applied alike by the admin API (package cloud) and the operator's
// offline commands (package datadir): user and group names, tenant labels
// in default host names, domain claims and proof records, which tenant
// owns an external host, the password policy and hashing, record ids, and
// how a name is quoted in a message (Truncate, DashIfEmpty).
package tenancy
