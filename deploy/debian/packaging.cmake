# Install rules and Debian packages (docs/packaging.md). Included from the top
# CMakeLists.txt after the programs' targets exist. Three install components, one package
# each: coordinator (tessera-coordinator: daemon, unit, example config), client
# (tessera-client: daemon, unit, example config), console (tessera-console: `tessera`).
#
# With CMAKE_INSTALL_PREFIX=/usr (deploy/package.sh) the configuration goes to /etc and the
# units to /lib/systemd/system, as Debian 12 lays them out; with any other prefix (a plain
# `cmake --install --prefix DIR`) everything stays under the prefix, so a test can install
# into a temporary folder.
include(GNUInstallDirs)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(TESSERA_CONFIG_ROOT "/etc")
  set(TESSERA_UNIT_DIR "/lib/systemd/system")
else()
  set(TESSERA_CONFIG_ROOT "${CMAKE_INSTALL_SYSCONFDIR}")
  set(TESSERA_UNIT_DIR "lib/systemd/system")
endif()
set(CPACK_PACKAGE_CONTACT "Tessera maintainers <maintainers@users.noreply.r-seed-7e49055a.example>")
set(TESSERA_FULL_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
set(tessera_debian_dir "${PROJECT_SOURCE_DIR}/deploy/debian")
set(tessera_package_dir "${PROJECT_BINARY_DIR}/debian")

# The sandbox both units share, pasted into each at configure time.
file(READ "${tessera_debian_dir}/hardening.conf" TESSERA_HARDENING)
string(STRIP "${TESSERA_HARDENING}" TESSERA_HARDENING)

# tessera_package_docs(NAME COMPONENT): /usr/share/doc/NAME: copyright, the Debian
# changelog (compressed, as policy wants) and docs/packaging.md.
function(tessera_package_docs name component)
  set(changelog "${tessera_package_dir}/${name}/changelog.Debian")
  string(TIMESTAMP date "%a, %d %b %Y %H:%M:%S +0000" UTC)
  file(WRITE "${changelog}"
       "${name} (${PROJECT_VERSION}-1) unstable; urgency=medium\n\n"
       "  * Built from the Tessera repository by deploy/package.sh.\n\n"
       " -- ${CPACK_PACKAGE_CONTACT}  ${date}\n")
  execute_process(COMMAND gzip -9nf "${changelog}")
  install(FILES "${tessera_debian_dir}/copyright" "${changelog}.gz"
                "${PROJECT_SOURCE_DIR}/docs/packaging.md"
          DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/${name}" COMPONENT ${component})
endfunction()

# tessera_daemon_package(NAME CONFIG_NAME GECOS): the daemon NAME's install rules and the
# maintainer scripts of its package (component = NAME without "tessera-").
function(tessera_daemon_package name config_name gecos)
  string(REPLACE "tessera-" "" component "${name}")
  set(TESSERA_PACKAGE "${name}")
  set(TESSERA_CONFIG_NAME "${config_name}")
  set(TESSERA_USER_GECOS "${gecos}")
  set(out "${tessera_package_dir}/${name}")
  configure_file("${tessera_debian_dir}/${name}.service.in" "${out}/${name}.service" @ONLY)
  foreach(script postinst prerm postrm)
    configure_file("${tessera_debian_dir}/${script}.in" "${out}/${script}" @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
  file(WRITE "${out}/conffiles" "/etc/${name}/${config_name}\n")

  install(TARGETS ${name} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT ${component})
  install(FILES "${out}/${name}.service" DESTINATION "${TESSERA_UNIT_DIR}"
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT ${component})
  install(FILES "${tessera_debian_dir}/${config_name}" DESTINATION "${TESSERA_CONFIG_ROOT}/${name}"
          COMPONENT ${component})
  tessera_package_docs(${name} ${component})

  string(TOUPPER "${component}" up)
  set(CPACK_DEBIAN_${up}_PACKAGE_NAME "${name}" PARENT_SCOPE)
  # procps: /bin/kill, the units' ExecReload.
  set(CPACK_DEBIAN_${up}_PACKAGE_DEPENDS "adduser, procps" PARENT_SCOPE)
  set(CPACK_DEBIAN_${up}_PACKAGE_CONTROL_EXTRA
      "${out}/conffiles;${out}/postinst;${out}/prerm;${out}/postrm" PARENT_SCOPE)
endfunction()

tessera_daemon_package(tessera-coordinator coordinator.textproto "Tessera coordinator")
tessera_daemon_package(tessera-client client.textproto "Tessera site client")
# More sites (or federations) on one host: tessera-client@SITE.service.
configure_file("${tessera_debian_dir}/tessera-client@.service.in"
               "${tessera_package_dir}/tessera-client/tessera-client@.service" @ONLY)
install(FILES "${tessera_package_dir}/tessera-client/tessera-client@.service"
        DESTINATION "${TESSERA_UNIT_DIR}" COMPONENT client)

install(TARGETS tessera RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT console)
tessera_package_docs(tessera-console console)

# CPack: one .deb per component, named name_version-release_arch.deb; dependencies from
# dpkg-shlibdeps (the runtime libraries the binaries link, never -dev packages); debug
# symbols split into name-dbgsym_*.ddeb and the installed binaries stripped.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "tessera")
set(CPACK_PACKAGE_VENDOR "Tessera")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_COMPONENTS_ALL coordinator client console)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_RELEASE "1")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_CONSOLE_PACKAGE_NAME "tessera-console")
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION
    "Tessera coordinator daemon\nThe federation's coordinator: one mutually authenticated TLS 1.3 gRPC port,\nthe task runner and the RocksDB store. Runs as a hardened systemd service.")
set(CPACK_DEBIAN_CLIENT_DESCRIPTION
    "Tessera site client daemon\nA site's client daemon: trains on local data under the site's policy and takes\npart in secure aggregation. Runs as a hardened systemd service.")
set(CPACK_DEBIAN_CONSOLE_DESCRIPTION
    "Tessera operator console\nThe `tessera` command: federation PKI, tasks, clients, queries, simulation and\nthe dashboard.")
include(CPack)
