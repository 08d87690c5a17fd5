# packaging/cmake/MeshInstall.cmake - install rules (included from the top-level
# CMakeLists.txt). Every file belongs to one component; CPack makes one package of each
# (packaging/cmake/MeshCPack.cmake), debian/*.install pick the same files for dh.
#
#   component  contents                                          .deb          .rpm
#   runtime    libmesh.so.1.0.0, libmesh.so.1                    libmesh1      libmesh
#   dev        libmesh.so, mesh.h, mesh.pc, cmake/mesh/*.cmake   libmesh-dev   libmesh-devel
#   common     meshctl, /etc/mesh.conf, man pages, README        libmesh       libmesh-common
#
# The sysctl drop-in lib/sysctl.d/10-libmesh.conf goes to the package named libmesh in
# both formats, whose postinst / %post applies it: component common for deb, debhelper
# and plain, runtime for rpm (see "the sysctl drop-in" below).
#
# Paths follow GNUInstallDirs: -DCMAKE_INSTALL_PREFIX=/usr gives /usr/lib/<triplet> on
# Debian (dh_auto_configure passes it) and -DCMAKE_INSTALL_LIBDIR=lib64 the RPM layout.
# The configuration file goes to CMAKE_INSTALL_FULL_SYSCONFDIR: /etc for prefix /usr
# (the relative SYSCONFDIR would make that /usr/etc).
include(CMakePackageConfigHelpers)

# Package names, also used by MeshCPack.cmake.
set(MESH_DEB_PACKAGE_runtime "libmesh${PROJECT_VERSION_MAJOR}")
set(MESH_DEB_PACKAGE_dev     "libmesh-dev")
set(MESH_DEB_PACKAGE_common  "libmesh")
set(MESH_RPM_PACKAGE_runtime "libmesh")
set(MESH_RPM_PACKAGE_dev     "libmesh-devel")
set(MESH_RPM_PACKAGE_common  "libmesh-common")

# What the install rules add for a package format (package names above):
#   deb        /usr/share/doc/<deb package>/{copyright,changelog.Debian.gz} and
#              /usr/share/lintian/overrides/<deb package> in each package, README.md.gz
#              in libmesh (what `cpack -G DEB` needs; Debian policy 12.5, 12.7)
#   rpm        /usr/share/licenses/libmesh/LICENSE (%license),
#              /usr/share/doc/libmesh-common/README.md (%doc), and the shared library
#              mode 0755 as RPM distributions install it (what `cpack -G RPM` needs)
#   debhelper  no documentation: dh_installdocs and dh_installchangelogs add it (debian/rules)
#   plain      ${CMAKE_INSTALL_DOCDIR}/{README.md,LICENSE} (a plain `cmake --install`)
# auto (the default): rpm when CMAKE_INSTALL_LIBDIR is lib64, deb on a Debian-family
# host, plain elsewhere.
set(MESH_INSTALL_LAYOUT "auto" CACHE STRING "Package layout: auto, deb, rpm, debhelper or plain")
set_property(CACHE MESH_INSTALL_LAYOUT PROPERTY STRINGS auto deb rpm debhelper plain)
set(MESH_LAYOUT "${MESH_INSTALL_LAYOUT}")
if(MESH_LAYOUT STREQUAL "auto" OR MESH_LAYOUT STREQUAL "")
  if(CMAKE_INSTALL_LIBDIR STREQUAL "lib64")
    set(MESH_LAYOUT rpm)
  elseif(EXISTS /etc/debian_version)
    set(MESH_LAYOUT deb)
  else()
    set(MESH_LAYOUT plain)
  endif()
endif()
if(NOT MESH_LAYOUT MATCHES "^(deb|rpm|debhelper|plain)$")
  message(FATAL_ERROR "MESH_INSTALL_LAYOUT=${MESH_INSTALL_LAYOUT}: use auto, deb, rpm, debhelper or plain")
endif()
if(MESH_LAYOUT STREQUAL "rpm")
  set(CMAKE_INSTALL_SO_NO_EXE 0)   # Debian hosts default to 0644 shared libraries
endif()
message(STATUS "libmesh: install prefix ${CMAKE_INSTALL_PREFIX}, library ${MESH_LIBRARY_PATH}, "
               "configuration ${MESH_CONF_PATH}, package layout ${MESH_LAYOUT}")

set(MESH_PKG_DIR "${PROJECT_BINARY_DIR}/packaging")
file(MAKE_DIRECTORY "${MESH_PKG_DIR}")

# ---- runtime and dev: the library ----------------------------------------------------
install(TARGETS mesh EXPORT meshTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/mesh.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# pkg-config: `pkg-config --cflags --libs mesh`
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MESH_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(MESH_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MESH_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(MESH_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/packaging/mesh.pc.in ${MESH_PKG_DIR}/mesh.pc @ONLY)
install(FILES ${MESH_PKG_DIR}/mesh.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# CMake: find_package(mesh 1) and target_link_libraries(app PRIVATE mesh::mesh)
set(MESH_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mesh)
install(EXPORT meshTargets NAMESPACE mesh:: FILE meshTargets.cmake
  DESTINATION ${MESH_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/packaging/cmake/meshConfig.cmake.in
  ${MESH_PKG_DIR}/meshConfig.cmake INSTALL_DESTINATION ${MESH_CMAKE_DIR})
write_basic_package_version_file(${MESH_PKG_DIR}/meshConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${MESH_PKG_DIR}/meshConfig.cmake ${MESH_PKG_DIR}/meshConfigVersion.cmake
  DESTINATION ${MESH_CMAKE_DIR} COMPONENT dev)

# ---- common: meshctl, the configuration file, manual pages -----------------------------
install(TARGETS meshctl RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT common)
install(FILES ${PROJECT_SOURCE_DIR}/etc/mesh.conf
  DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR} COMPONENT common)

# Manual pages are compressed at build time (gzip -9n: maximal and reproducible, as
# Debian policy 12.1 and lintian want); one that does not exist yet is skipped.
set(MESH_MAN_PAGES mesh.conf.5 meshctl.8 libmesh.3)
set(mesh_man_outputs)
foreach(page IN LISTS MESH_MAN_PAGES)
  set(src ${PROJECT_SOURCE_DIR}/packaging/man/${page})
  if(NOT EXISTS ${src})
    message(STATUS "libmesh: packaging/man/${page} does not exist; not installing it")
    continue()
  endif()
  string(REGEX MATCH "[0-9]$" section "${page}")
  set(out ${MESH_PKG_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${MESH_PKG_DIR}/man
    COMMAND ${CMAKE_COMMAND} -E copy ${src} ${MESH_PKG_DIR}/man/${page}
    COMMAND gzip -9nf ${MESH_PKG_DIR}/man/${page}
    DEPENDS ${src} COMMENT "Compressing manual page ${page}" VERBATIM)
  list(APPEND mesh_man_outputs ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT common)
endforeach()
if(mesh_man_outputs)
  add_custom_target(mesh_man ALL DEPENDS ${mesh_man_outputs})
endif()

# ---- the sysctl drop-in: vm.max_map_count = 1048576 -----------------------------------
# Each meshed span costs VMAs and the heap's budget follows vm.max_map_count (src/mesh.c),
# so the package named libmesh raises it as Fedora 39 does; debian/libmesh.postinst and
# packaging/rpm/post.sh apply it at installation, only upwards. <prefix>/lib/sysctl.d,
# not the library directory: systemd-sysctl and `sysctl --system` read /usr/lib/sysctl.d
# (and /usr/local/lib/sysctl.d). Not a conffile: /etc/sysctl.d/10-libmesh.conf, the
# administrator's, replaces it; removing the package removes it.
if(MESH_LAYOUT STREQUAL "rpm")
  set(mesh_sysctl_component runtime)   # the RPM named libmesh
else()
  set(mesh_sysctl_component common)    # the .deb named libmesh
endif()
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sysctl/10-libmesh.conf
  DESTINATION lib/sysctl.d COMPONENT ${mesh_sysctl_component})

# ---- documentation and licence (MESH_INSTALL_LAYOUT above) --------------------------------
function(mesh_gzip_file src out)
  get_filename_component(name ${out} NAME_WLE)
  get_filename_component(dir ${out} DIRECTORY)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${CMAKE_COMMAND} -E copy ${src} ${dir}/${name}
    COMMAND gzip -9nf ${dir}/${name}
    DEPENDS ${src} VERBATIM)
endfunction()

if(MESH_LAYOUT STREQUAL "deb")
  # The same copyright file and changelog as the debian/ source package.
  mesh_gzip_file(${PROJECT_SOURCE_DIR}/debian/changelog ${MESH_PKG_DIR}/deb/changelog.Debian.gz)
  mesh_gzip_file(${PROJECT_SOURCE_DIR}/README.md ${MESH_PKG_DIR}/deb/README.md.gz)
  add_custom_target(mesh_deb_docs ALL DEPENDS
    ${MESH_PKG_DIR}/deb/changelog.Debian.gz ${MESH_PKG_DIR}/deb/README.md.gz)
  foreach(comp runtime dev common)
    set(pkg ${MESH_DEB_PACKAGE_${comp}})
    install(FILES ${PROJECT_SOURCE_DIR}/debian/copyright ${MESH_PKG_DIR}/deb/changelog.Debian.gz
      DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${pkg} COMPONENT ${comp})
    # debian/<package>.lintian-overrides, where dh_lintian would put it
    install(FILES ${PROJECT_SOURCE_DIR}/debian/${pkg}.lintian-overrides
      DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME ${pkg} COMPONENT ${comp})
  endforeach()
  install(FILES ${MESH_PKG_DIR}/deb/README.md.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${MESH_DEB_PACKAGE_common} COMPONENT common)
elseif(MESH_LAYOUT STREQUAL "rpm")
  # libmesh-common and libmesh-devel require libmesh, which carries the licence.
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/licenses/${MESH_RPM_PACKAGE_runtime} COMPONENT runtime)
  install(FILES ${PROJECT_SOURCE_DIR}/README.md
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${MESH_RPM_PACKAGE_common} COMPONENT common)
elseif(MESH_LAYOUT STREQUAL "plain")
  install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE
    DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT common)
endif()
