#include "core/config.hpp"
#include <iostream>
int main() { std::cout << outpost::default_config_text(); }
