#!/bin/sh
# Entrypoint of the Redis stand-in, following the official image: arguments that start with '-'
# or name a .conf file go to redis-server. The official image compiles protected mode off; here
# `--protected-mode no` is added unless a given config file sets protected-mode itself.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = 'redis-server' ]; then
  shift
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    conf=$1; shift
    if [ -r "$conf" ] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$conf"; then
      set -- redis-server "$conf" "$@"
    else
      set -- redis-server "$conf" --protected-mode no "$@"
    fi
  else
    set -- redis-server --protected-mode no "$@"
  fi
  um=$(umask)
  if [ "$um" = '0022' ]; then umask 0077; fi
fi
exec "$@"
