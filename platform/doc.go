// Package platform is the root of the shared module of the shop's services. It holds only
// cross-cutting mechanisms (authentication, authorisation, errors, server bootstrap, config,
// database opening, mutual TLS and service credentials, test helpers), never domain types:
// each concern lives in its own sub-package.
package platform
